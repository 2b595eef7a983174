//! `agora health <url>`: the probe an orchestrator runs inside an image that has no shell.
use std::time::Duration;

/// The readiness URL of the service in this container: its `AGORA_PORT`, or 8080, the port every
/// service listens on in the images.
pub fn own_url() -> String {
    let port = std::env::var("AGORA_PORT").unwrap_or_else(|_| "8080".into());
    format!("http://127.0.0.1:{port}/health/ready")
}

/// Succeeds when `url` answers with a 2xx status within `timeout_secs`.
pub async fn check(url: &str, timeout_secs: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .build()?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url}: {status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every connection with `status_line` and no body.
    async fn answering(status_line: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/health/ready", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                let response = format!("HTTP/1.1 {status_line}\r\ncontent-length: 0\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn a_ready_service_passes_and_an_unready_or_absent_one_fails() {
        super::check(&answering("200 OK").await, 3).await.unwrap();
        let error = super::check(&answering("503 Service Unavailable").await, 3)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("503"), "{error}");
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        assert!(super::check(&format!("http://{closed}/"), 3).await.is_err());
    }
}
