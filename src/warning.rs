//! `Warning:` response headers (k8s.io/apiserver/pkg/warning): a handler records warnings while
//! it serves one request, and the router writes them on whatever response goes out, success or
//! failure, as kube-apiserver's warning recorder does.

use std::cell::RefCell;
use std::future::Future;

use http::{HeaderValue, Response};

use crate::body::Body;

tokio::task_local! {
    static WARNINGS: RefCell<Vec<String>>;
}

/// Record a warning for the request being served (ignored outside [`collect`]). A repeated
/// warning is recorded once.
pub fn add(message: impl Into<String>) {
    let message = message.into();
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.borrow_mut();
        if !w.contains(&message) {
            w.push(message);
        }
    });
}

/// Run `f` with a fresh warning recorder; returns its output and the warnings it recorded.
pub async fn collect<F: Future>(f: F) -> (F::Output, Vec<String>) {
    WARNINGS
        .scope(RefCell::new(Vec::new()), async {
            let out = f.await;
            let warnings = WARNINGS.with(|w| w.take());
            (out, warnings)
        })
        .await
}

/// Append `Warning: 299 - "<message>"` headers, the message quoted as Go's `strconv.Quote` does.
pub fn add_headers(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let value = format!("299 - {}", kubox_apimachinery::validation::go_quote(w));
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
}
