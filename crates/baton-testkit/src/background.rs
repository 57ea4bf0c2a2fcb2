//! Servers that outlive any one test's tokio runtime: each runs on its own thread with
//! its own runtime, for shared per-process fixtures.

use std::net::SocketAddr;

/// Serves `make()`'s router on a free loopback port from a dedicated thread, forever.
/// The router is built on that thread, so it may hold runtime-bound state.
pub fn serve_forever<F>(make: F) -> std::io::Result<SocketAddr>
where
    F: FnOnce() -> axum::Router + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(listener.local_addr());
            let _ = axum::serve(listener, make()).await;
        });
    });
    rx.recv().map_err(std::io::Error::other)?
}
