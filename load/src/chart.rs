//! SVG line charts of a run (plotters with its SVG backend only: no font library, no system
//! dependency; the text is left to the browser that shows the SVG).
use plotters::prelude::*;

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed (e.g. p50 beside a solid p99 of the same colour).
    pub dashed: bool,
    /// Index into the palette, so the p50 and p99 of one scenario share a colour.
    pub colour: usize,
}

/// A chart: lines against a common x axis.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Logarithmic y axis, for latencies that span milliseconds to seconds.
    pub log_y: bool,
    /// Horizontal reference lines (objectives), with their labels.
    pub thresholds: Vec<(f64, String)>,
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// The range an axis needs for `values`, a little wider, never empty.
pub fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        low = low.min(v);
        high = high.max(v);
    }
    if !low.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        (low / 1.5, high * 1.5)
    } else {
        let low = if low >= 0.0 { 0.0 } else { low * 1.1 };
        let high = if high > low { high * 1.1 } else { low + 1.0 };
        (low, high)
    }
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (900, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let x = axis_range(
            chart
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0)),
            false,
        );
        let ys = chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(chart.thresholds.iter().map(|t| t.0));
        let y = axis_range(ys, chart.log_y);
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(chart.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60);
        if chart.log_y {
            let mut ctx = builder
                .build_cartesian_2d(x.0..x.1, (y.0..y.1).log_scale())
                .map_err(plot_error)?;
            ctx.configure_mesh()
                .x_desc(chart.x_label)
                .y_desc(chart.y_label)
                .draw()
                .map_err(plot_error)?;
            draw_lines(&mut ctx, chart, x)?;
        } else {
            let mut ctx = builder
                .build_cartesian_2d(x.0..x.1, y.0..y.1)
                .map_err(plot_error)?;
            ctx.configure_mesh()
                .x_desc(chart.x_label)
                .y_desc(chart.y_label)
                .draw()
                .map_err(plot_error)?;
            draw_lines(&mut ctx, chart, x)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(out)
}

fn draw_lines<'a, Y>(
    ctx: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    chart: &Chart,
    x: (f64, f64),
) -> anyhow::Result<()>
where
    Y: Ranged<ValueType = f64>,
{
    for (value, label) in &chart.thresholds {
        ctx.draw_series(DashedLineSeries::new(
            [(x.0, *value), (x.1, *value)],
            4,
            4,
            BLACK.mix(0.5).stroke_width(1),
        ))
        .map_err(plot_error)?
        .label(label.as_str())
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    for series in &chart.series {
        let colour = PALETTE[series.colour % PALETTE.len()];
        let style = colour.stroke_width(2);
        let drawn = if series.dashed {
            ctx.draw_series(DashedLineSeries::new(series.points.clone(), 6, 4, style))
        } else {
            ctx.draw_series(LineSeries::new(series.points.clone(), style))
        }
        .map_err(plot_error)?;
        drawn
            .label(series.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        ctx.draw_series(
            series
                .points
                .iter()
                .map(|p| Circle::new(*p, 3, colour.filled())),
        )
        .map_err(plot_error)?;
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

fn plot_error<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ranges_start_at_zero_widen_and_never_collapse() {
        assert_eq!(
            axis_range([100.0, 200.0].into_iter(), false),
            (0.0, 220.00000000000003)
        );
        assert_eq!(axis_range(std::iter::empty(), false), (0.0, 1.0));
        assert_eq!(axis_range([0.0].into_iter(), false), (0.0, 1.0));
        // A log axis ignores zeros and spans the values with a margin.
        let (low, high) = axis_range([0.0, 2.0, 300.0].into_iter(), true);
        assert!((low - 2.0 / 1.5).abs() < 1e-12 && (high - 450.0).abs() < 1e-9);
    }

    #[test]
    fn a_chart_is_an_svg_with_every_line_and_its_legend() {
        let chart = Chart {
            title: "latency against offered rate",
            x_label: "offered req/s",
            y_label: "ms",
            log_y: true,
            thresholds: vec![(50.0, "read objective 50 ms".into())],
            series: vec![
                Series {
                    name: "product p99".into(),
                    points: vec![(100.0, 3.0), (200.0, 4.0), (400.0, 60.0)],
                    dashed: false,
                    colour: 0,
                },
                Series {
                    name: "product p50".into(),
                    points: vec![(100.0, 1.0), (200.0, 1.2), (400.0, 9.0)],
                    dashed: true,
                    colour: 0,
                },
            ],
        };
        let svg = svg(&chart).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        for text in [
            "latency against offered rate",
            "product p99",
            "product p50",
            "read objective 50 ms",
            "offered req/s",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        // One marker per point of each line.
        assert_eq!(svg.matches("<circle").count(), 6);
    }
}
