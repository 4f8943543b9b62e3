//! `Warning:` response headers (k8s.io/apiserver/pkg/warning): a handler records warnings while
//! it serves one request, and the router writes them on whatever response goes out, success or
//! failure, as kube-apiserver's warning recorder does.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;

use http::{HeaderValue, Response};

use crate::body::Body;

tokio::task_local! {
    static WARNINGS: Arc<Mutex<Vec<String>>>;
}

/// Record a warning for the request being served (ignored outside [`collect`]). A repeated
/// warning is recorded once.
pub fn add(message: impl Into<String>) {
    let message = message.into();
    let _ = WARNINGS.try_with(|w| {
        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
        if !w.contains(&message) {
            w.push(message);
        }
    });
}

/// Run `f` with a fresh warning recorder; returns its output and the warnings it recorded.
pub fn collect<F: Future>(f: F) -> impl Future<Output = (F::Output, Vec<String>)> {
    // Combinators, not an `async` block: a future awaited in one is held twice over (the
    // captured value and the awaited one), and the router's future is copied whole on its way.
    let recorded = Arc::new(Mutex::new(Vec::new()));
    WARNINGS.scope(recorded.clone(), f).map(move |out| {
        let warnings = std::mem::take(&mut *recorded.lock().unwrap_or_else(|e| e.into_inner()));
        (out, warnings)
    })
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
