//! The web client, embedded in the binary at build time (`web/`).
//!
//! `/` and `/r/<room>` serve `index.html` (the client reads the room from
//! the path); every other file is served at its path under `web/`. Each
//! response carries an ETag (and, from the server's layer, the strict
//! [`CONTENT_SECURITY_POLICY`] and the other security headers), so
//! browsers revalidate cheaply instead of downloading again. Text files are
//! gzipped once, on first use, and sent compressed to browsers that accept
//! it (the whole client is about a third of its size that way).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use rust_embed::RustEmbed;

/// The files under `web/`.
#[derive(RustEmbed)]
#[folder = "web/"]
struct Web;

/// Policy for every page and asset: nothing but this origin; media from the
/// camera and peers; no inline scripts or styles.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Whether a file of this type is worth compressing.
fn compressible(mime: &mime_guess::Mime) -> bool {
    mime.type_() == "text" || matches!(mime.subtype().as_str(), "javascript" | "json" | "svg")
}

/// The gzipped text files, compressed on first use.
fn gzipped() -> &'static HashMap<String, Bytes> {
    static GZ: OnceLock<HashMap<String, Bytes>> = OnceLock::new();
    GZ.get_or_init(|| {
        Web::iter()
            .filter(|path| {
                compressible(&mime_guess::from_path(path.as_ref()).first_or_octet_stream())
            })
            .filter_map(|path| {
                let file = Web::get(&path)?;
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                gz.write_all(&file.data).ok()?;
                let gz = gz.finish().ok()?;
                (gz.len() < file.data.len()).then(|| (path.into_owned(), Bytes::from(gz)))
            })
            .collect()
    })
}

/// Whether the request's `Accept-Encoding` allows gzip (RFC 9110
/// §12.5.3): an explicit `gzip` (or `x-gzip`) entry decides by its q-value,
/// otherwise `*` does; q=0 (in any spelling: `0`, `0.0`, `0.000`) means
/// "not acceptable". An unreadable q-value counts as refusal, since the
/// plain file is always acceptable. Hand-written: the crates that parse
/// the header (`headers`, tower-http's internals) are not dependencies
/// here, and this is a dozen lines with tests.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for entry in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = entry.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let mut q = Some(1000);
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = qvalue(v.trim());
            }
        }
        let q = q.unwrap_or(0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(gzip.map_or(q, |g: u32| g.max(q)));
        } else if name == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0)
}

/// A q-value (`0`, `0.5`, `1.000`, …) in thousandths; `None` if malformed.
fn qvalue(v: &str) -> Option<u32> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let frac: u32 = format!("{frac:0<3}").parse().ok()?;
    let q = whole + frac;
    (q <= 1000).then_some(q)
}

/// Serves the file at `path` (relative to `web/`), or 404.
pub fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(file) = Web::get(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let gz = if accepts_gzip(request_headers) {
        gzipped().get(path).cloned()
    } else {
        None
    };
    let etag = format!(
        "\"{}{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
        if gz.is_some() { "-gz" } else { "" }
    );
    let mut headers = HeaderMap::new();
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    if compressible(&mime) {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let content_type = if mime.type_() == "text" || mime.subtype() == "javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("mime types are valid header values"),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header value"),
    );
    // The security headers (this CSP among them) are added to every
    // response by the server's layer.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let unchanged = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    match gz {
        Some(body) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, body).into_response()
        }
        None => (headers, file.data).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn headers(accept: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(accept));
        h
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip(&headers("gzip, deflate, br")));
        assert!(accepts_gzip(&headers("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&headers("*")));
        assert!(accepts_gzip(&headers("gzip;q=0.001")));
        assert!(accepts_gzip(&headers("x-gzip")));
        assert!(accepts_gzip(&headers("gzip;q=0, gzip;q=1")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("gzip; q=0")));
        assert!(!accepts_gzip(&headers("gzip;Q=0.0")));
        assert!(!accepts_gzip(&headers("gzip;q=0.000")));
        assert!(!accepts_gzip(&headers("*;q=0")));
        // An explicit refusal wins over the wildcard, in either order.
        assert!(!accepts_gzip(&headers("gzip;q=0, *")));
        assert!(!accepts_gzip(&headers("*, gzip;q=0")));
        assert!(accepts_gzip(&headers("*;q=0, gzip")));
        // Malformed q-values do not turn into a yes.
        assert!(!accepts_gzip(&headers("gzip;q=abc")));
        assert!(!accepts_gzip(&headers("gzip;q=2")));
        assert!(!accepts_gzip(&headers("gzip;q=0.0000")));
        assert!(!accepts_gzip(&headers("br, identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn text_files_are_served_gzipped_when_accepted() {
        let plain = Web::get("index.html").expect("index.html is embedded").data;
        let gz = gzipped().get("index.html").expect("index.html compresses");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain.as_ref());
        let response = serve("index.html", &headers("gzip"));
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        let response = serve("index.html", &HeaderMap::new());
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
