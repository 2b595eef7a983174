//! A large catalog generated from the product's index alone (`agora seed demo --products N`): the
//! same index always gives the same SKU, name, description, category, price and stock, so a
//! catalog of 10,000 products is the same on every machine and seeding it again finds every SKU
//! already there. Names and descriptions are built from per-category vocabularies so that search
//! and category filters see a realistic spread of words, categories and prices.
use serde_json::{json, Value};

/// One leaf category of the demo catalog and what its products are made of.
struct Kind {
    category: &'static str,
    /// SKU prefix (after `GEN-`).
    code: &'static str,
    nouns: &'static [&'static str],
    features: &'static [&'static str],
    /// Price range in cents.
    price: (u64, u64),
    /// Attribute name and its possible values.
    attribute: (&'static str, &'static [&'static str]),
}

const KINDS: &[Kind] = &[
    Kind {
        category: "audio",
        code: "AUD",
        nouns: &[
            "Headphones",
            "Earbuds",
            "Speaker",
            "Soundbar",
            "Turntable",
            "Amplifier",
        ],
        features: &[
            "active noise cancelling",
            "a flat studio response",
            "30 hours of battery",
            "multipoint Bluetooth",
            "a braided detachable cable",
            "deep, controlled bass",
        ],
        price: (1_900, 49_900),
        attribute: ("connection", &["wired", "bluetooth", "wifi"]),
    },
    Kind {
        category: "computers",
        code: "CMP",
        nouns: &[
            "Laptop",
            "Keyboard",
            "Mouse",
            "Monitor",
            "Docking Station",
            "Webcam",
        ],
        features: &[
            "a backlit layout",
            "USB-C power delivery",
            "a matte anti-glare panel",
            "hot-swappable switches",
            "an aluminium unibody",
            "a 1080p sensor",
        ],
        price: (1_500, 189_900),
        attribute: ("layout", &["US", "UK", "DE", "FR", "Nordic"]),
    },
    Kind {
        category: "phones",
        code: "PHN",
        nouns: &[
            "Smartphone",
            "Phone Case",
            "Charger",
            "Power Bank",
            "Screen Protector",
        ],
        features: &[
            "fast wireless charging",
            "a drop-tested frame",
            "a 120 Hz display",
            "two-day battery life",
            "tempered glass",
        ],
        price: (900, 119_900),
        attribute: ("color", &["black", "white", "blue", "green", "red"]),
    },
    Kind {
        category: "cookware",
        code: "CKW",
        nouns: &[
            "Frying Pan",
            "Dutch Oven",
            "Chef's Knife",
            "Saucepan",
            "Wok",
            "Cutting Board",
        ],
        features: &[
            "a tri-ply stainless steel body",
            "an enamelled cast-iron shell",
            "a riveted handle",
            "induction-ready base",
            "hand-forged carbon steel",
            "end-grain walnut",
        ],
        price: (1_200, 29_900),
        attribute: (
            "material",
            &["steel", "cast iron", "carbon steel", "wood", "ceramic"],
        ),
    },
    Kind {
        category: "coffee-tea",
        code: "COF",
        nouns: &[
            "Espresso Machine",
            "Coffee Grinder",
            "Pour-Over Kettle",
            "French Press",
            "Tea Infuser",
            "Coffee Beans",
        ],
        features: &[
            "conical burrs",
            "a gooseneck spout",
            "precise temperature control",
            "a double-walled carafe",
            "single-origin beans roasted weekly",
            "a fine mesh filter",
        ],
        price: (800, 89_900),
        attribute: ("roast", &["light", "medium", "dark", "none"]),
    },
    Kind {
        category: "tops",
        code: "TOP",
        nouns: &[
            "T-Shirt",
            "Sweater",
            "Hoodie",
            "Oxford Shirt",
            "Polo",
            "Cardigan",
        ],
        features: &[
            "organic cotton",
            "merino wool",
            "a relaxed fit",
            "reinforced seams",
            "a brushed fleece lining",
        ],
        price: (1_500, 14_900),
        attribute: ("size", &["XS", "S", "M", "L", "XL"]),
    },
    Kind {
        category: "outerwear",
        code: "OUT",
        nouns: &[
            "Rain Jacket",
            "Parka",
            "Down Vest",
            "Softshell Jacket",
            "Wool Coat",
        ],
        features: &[
            "a waterproof breathable membrane",
            "recycled down fill",
            "taped seams",
            "a packable hood",
            "a wind-resistant shell",
        ],
        price: (4_900, 49_900),
        attribute: ("size", &["XS", "S", "M", "L", "XL"]),
    },
    Kind {
        category: "fiction",
        code: "FIC",
        nouns: &[
            "Novel",
            "Short Stories",
            "Thriller",
            "Fantasy Saga",
            "Mystery",
        ],
        features: &[
            "an unreliable narrator",
            "a coastal village setting",
            "three generations of one family",
            "a slow-burning mystery",
            "a new translation",
        ],
        price: (699, 3_499),
        attribute: ("format", &["hardcover", "paperback"]),
    },
    Kind {
        category: "non-fiction",
        code: "NFI",
        nouns: &[
            "History",
            "Field Guide",
            "Cookbook",
            "Biography",
            "Science Primer",
        ],
        features: &[
            "hundreds of photographs",
            "step-by-step recipes",
            "original archive research",
            "clear diagrams",
            "an index of sources",
        ],
        price: (999, 5_999),
        attribute: ("format", &["hardcover", "paperback"]),
    },
    Kind {
        category: "camping",
        code: "CAMP",
        nouns: &[
            "Tent",
            "Sleeping Bag",
            "Camping Stove",
            "Headlamp",
            "Backpack",
            "Sleeping Pad",
        ],
        features: &[
            "a freestanding aluminium frame",
            "a comfort rating of -5 °C",
            "a piezo igniter",
            "a rechargeable battery",
            "an adjustable back system",
        ],
        price: (1_900, 59_900),
        attribute: ("weight", &["ultralight", "light", "standard"]),
    },
    Kind {
        category: "fitness",
        code: "FIT",
        nouns: &[
            "Kettlebell",
            "Yoga Mat",
            "Resistance Bands",
            "Jump Rope",
            "Dumbbell Set",
            "Foam Roller",
        ],
        features: &[
            "a non-slip surface",
            "powder-coated cast iron",
            "five resistance levels",
            "ball-bearing handles",
            "a carry strap",
        ],
        price: (900, 24_900),
        attribute: ("weight", &["4 kg", "8 kg", "12 kg", "16 kg", "n/a"]),
    },
    Kind {
        category: "board-games",
        code: "BRD",
        nouns: &[
            "Strategy Game",
            "Party Game",
            "Cooperative Game",
            "Card Game",
            "Puzzle",
        ],
        features: &[
            "two to five players",
            "forty-minute rounds",
            "a modular board",
            "hand-painted miniatures",
            "rules you learn in ten minutes",
        ],
        price: (1_200, 8_900),
        attribute: ("players", &["1-4", "2-5", "2-6", "3-8"]),
    },
];

const BRANDS: &[&str] = &[
    "Nordvik",
    "Altura",
    "Brightwell",
    "Corvo",
    "Duneside",
    "Elmstead",
    "Fjell",
    "Granite & Co",
    "Halden",
    "Isola",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Marlowe",
    "Northbay",
    "Oakridge",
];

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Compact",
    "Pro",
    "Everyday",
    "Travel",
    "Studio",
    "Heritage",
    "Urban",
    "Essential",
    "Signature",
    "Lightweight",
    "Premium",
];

const OPENINGS: &[&str] = &[
    "Built for daily use, with",
    "Designed in small batches, with",
    "A favourite of our customers, with",
    "Made to last, with",
    "Our best value pick, with",
];

/// SplitMix64: a fixed, well-mixed function of the index (not a random generator), so the catalog
/// never depends on a seed or a library's algorithm.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<T: Copy>(items: &[T], hash: u64) -> T {
    items[(hash % items.len() as u64) as usize]
}

/// The `index`-th generated product, as the body of `POST /products`.
pub fn product(index: usize) -> Value {
    let i = index as u64;
    let kind = &KINDS[index % KINDS.len()];
    let h = |salt: u64| mix(i.wrapping_mul(31).wrapping_add(salt));
    let (brand, adjective, noun) = (
        pick(BRANDS, h(1)),
        pick(ADJECTIVES, h(2)),
        pick(kind.nouns, h(3)),
    );
    let (first, second) = (pick(kind.features, h(4)), pick(kind.features, h(5)));
    let features = if first == second {
        first.to_owned()
    } else {
        format!("{first} and {second}")
    };
    let (low, high) = kind.price;
    // Prices end in 9 (19.99, 24.49, …), as shops price them.
    let price = (low + h(6) % (high - low)) / 10 * 10 + 9;
    json!({
        "sku": sku(index),
        "name": format!("{brand} {adjective} {noun} {}", 100 + h(7) % 900),
        "description": format!(
            "{} {features}. {brand}'s {} {} in the {} range.",
            pick(OPENINGS, h(8)),
            adjective.to_lowercase(),
            noun.to_lowercase(),
            kind.category.replace('-', " & "),
        ),
        "price": {"amount": price, "currency": "EUR"},
        "category": kind.category,
        "attributes": {
            "brand": brand,
            kind.attribute.0: pick(kind.attribute.1, h(9)),
        },
    })
}

/// The generated product's SKU: unique per index, and what makes seeding idempotent.
pub fn sku(index: usize) -> String {
    let kind = &KINDS[index % KINDS.len()];
    format!("GEN-{}-{index:06}", kind.code)
}

/// Units on hand for the `index`-th product: mostly a few dozen, one in twelve sold out.
pub fn stock(index: usize) -> u64 {
    let h = mix(index as u64 ^ 0x5EED);
    if h % 12 == 0 {
        0
    } else {
        1 + h % 120
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_index_gives_the_same_product_and_skus_are_unique() {
        assert_eq!(product(4242), product(4242));
        let mut skus: Vec<String> = (0..20_000).map(sku).collect();
        skus.sort_unstable();
        skus.dedup();
        assert_eq!(skus.len(), 20_000);
    }

    #[test]
    fn generated_products_pass_the_catalogs_rules() {
        for index in 0..2_000 {
            let p = product(index);
            let sku = p["sku"].as_str().unwrap();
            assert!(
                (3..=40).contains(&sku.len())
                    && sku
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
                "{sku}"
            );
            let name = p["name"].as_str().unwrap();
            assert!((1..=200).contains(&name.chars().count()), "{name}");
            assert!(p["description"].as_str().unwrap().chars().count() <= 5000);
            let kind = KINDS.iter().find(|k| k.category == p["category"]).unwrap();
            let amount = p["price"]["amount"].as_u64().unwrap();
            assert!(
                amount >= kind.price.0 && amount <= kind.price.1 + 9,
                "{amount}"
            );
            assert_eq!(amount % 10, 9);
        }
    }

    #[test]
    fn the_catalog_spreads_over_every_category_brand_and_price_band() {
        let products: Vec<Value> = (0..1_200).map(product).collect();
        for kind in KINDS {
            let n = products
                .iter()
                .filter(|p| p["category"] == kind.category)
                .count();
            assert_eq!(n, 100, "{}", kind.category);
        }
        for brand in BRANDS {
            assert!(
                products.iter().any(|p| p["attributes"]["brand"] == *brand),
                "{brand}"
            );
        }
        let sold_out = (0..1_200).filter(|i| stock(*i) == 0).count();
        assert!((50..=150).contains(&sold_out), "{sold_out} sold out");
    }
}
