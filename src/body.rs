//! Response bodies and the small helpers every handler uses to build responses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
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

/// A body of `bytes` and then a newline, without copying `bytes`; its length is exact, so the
/// answer keeps a Content-Length.
pub fn with_newline(bytes: Bytes) -> Body {
    TwoChunks {
        first: Some(bytes),
        second: Some(Bytes::from_static(b"\n")),
    }
    .boxed()
}

struct TwoChunks {
    first: Option<Bytes>,
    second: Option<Bytes>,
}

impl http_body::Body for TwoChunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = this.first.take().or_else(|| this.second.take());
        std::task::Poll::Ready(next.map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.second.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let len =
            self.first.as_ref().map_or(0, Bytes::len) + self.second.as_ref().map_or(0, Bytes::len);
        http_body::SizeHint::with_exact(len as u64)
    }
}
