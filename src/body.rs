//! Response bodies and the small helpers every handler uses to build responses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};

use crate::status::ApiError;

/// The body type of every response: a full buffer or a stream (watch).
pub type Body = BoxBody<Bytes, Infallible>;

/// A full body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A JSON response.
pub fn json_response(code: StatusCode, value: &serde_json::Value) -> Response<Body> {
    bytes_response(code, "application/json", crate::encoding::json_bytes(value))
}

/// A response with a content type.
pub fn bytes_response(
    code: StatusCode,
    content_type: &str,
    bytes: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(full(bytes));
    *resp.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// An ETag for bytes: a hash of them, quoted.
fn etag_of(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("\"{:016X}\"", h.finish())
}

/// Rendered bytes with their ETag.
#[derive(Clone)]
pub struct Tagged {
    /// The rendered answer.
    pub bytes: Bytes,
    /// Its ETag, quoted.
    pub etag: String,
}

impl Tagged {
    /// `bytes` and their ETag.
    pub fn new(bytes: Bytes) -> Tagged {
        let etag = etag_of(&bytes);
        Tagged { bytes, etag }
    }
}

/// 200 with `body` and its ETag (quoted), or 304 Not Modified without a body when the request's
/// `If-None-Match` names that ETag: HTTP caches (kubectl's) revalidate instead of downloading.
pub fn with_etag(
    headers: &HeaderMap,
    content_type: &str,
    body: Bytes,
    etag: &str,
) -> Response<Body> {
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let mut resp = if unchanged {
        bytes_response(StatusCode::NOT_MODIFIED, content_type, Bytes::new())
    } else {
        bytes_response(StatusCode::OK, content_type, body)
    };
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// The response for an error: its Status as JSON, with Retry-After where it has one.
pub fn error_response(err: &ApiError) -> Response<Body> {
    error_response_as(err, false)
}

/// The response for an error, its Status in Kubernetes protobuf when `protobuf`.
pub fn error_response_as(err: &ApiError, protobuf: bool) -> Response<Body> {
    let mut resp = if protobuf {
        crate::encoding::protobuf_response(&err.to_status(), err.code)
    } else {
        json_response(err.code, &err.to_status())
    };
    if let Some(secs) = err.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// `body` and then a newline, as one more frame: nothing is copied, and an exact length stays
/// exact (so the answer keeps a Content-Length).
pub fn then_newline(body: Body) -> Body {
    ThenNewline {
        body,
        newline: true,
    }
    .boxed()
}

struct ThenNewline {
    body: Body,
    /// The newline is still to come.
    newline: bool,
}

impl http_body::Body for ThenNewline {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.body).poll_frame(cx) {
            std::task::Poll::Ready(None) if this.newline => {
                this.newline = false;
                std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(b"\n")))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.newline && self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let inner = self.body.size_hint();
        let extra = u64::from(self.newline);
        let mut hint = http_body::SizeHint::new();
        // The upper bound first: a lower bound above the upper one is refused.
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(extra));
        }
        hint.set_lower(inner.lower().saturating_add(extra));
        hint
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body::Body as _;

    #[tokio::test]
    async fn a_newline_follows_the_body_and_the_length_stays_exact() {
        for bytes in [&b"{\"kind\":\"Status\"}"[..], b""] {
            let body = then_newline(full(Bytes::copy_from_slice(bytes)));
            let n = bytes.len() as u64 + 1;
            assert_eq!(body.size_hint().exact(), Some(n));
            assert!(!body.is_end_stream());
            let out = body.collect().await.unwrap().to_bytes();
            assert_eq!(&out[..], [bytes, b"\n"].concat().as_slice());
        }
    }

    #[tokio::test]
    async fn a_body_of_unknown_length_keeps_an_open_upper_bound() {
        let (mut tx, rx) =
            futures::channel::mpsc::channel::<Result<http_body::Frame<Bytes>, Infallible>>(1);
        let stream = http_body_util::StreamBody::new(rx);
        let body = then_newline(stream.boxed());
        assert_eq!(body.size_hint().lower(), 1);
        assert_eq!(body.size_hint().upper(), None);
        tx.try_send(Ok(http_body::Frame::data(Bytes::from_static(b"ab"))))
            .unwrap();
        drop(tx);
        let out = body.collect().await.unwrap().to_bytes();
        assert_eq!(&out[..], b"ab\n");
    }
}
