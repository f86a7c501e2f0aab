//! One HTTP/1.1 GET over a stream the doctor opened itself (so DNS, TCP
//! and TLS are checked, and reported, step by step), with hyper's client.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;

use super::turn_client::Stream;

/// The most of a body the doctor reads.
pub const MAX_BODY: usize = 64 * 1024;

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body as text (lossy), at most [`MAX_BODY`] bytes.
    pub body: String,
}

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (a bad path or host).
    #[error("bad request: {0}")]
    Request(String),
    /// The exchange failed (not HTTP, closed, too big…).
    #[error("{0}")]
    Exchange(String),
}

/// `GET path` with `Host: authority` over `io`.
pub async fn get(io: Box<dyn Stream>, authority: &str, path: &str) -> Result<Answer, HttpError> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| HttpError::Exchange(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let result = async {
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(
                hyper::header::USER_AGENT,
                concat!("huddle-doctor/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| HttpError::Exchange(describe(&e)))?;
        let status = res.status().as_u16();
        let body = Limited::new(res.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| HttpError::Exchange(e.to_string()))?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
    .await;
    driver.abort();
    result
}

/// hyper's error with its cause ("connection closed before message
/// completed", "invalid HTTP version parsed").
fn describe(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
