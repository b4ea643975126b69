//! rumqttd 0.20.0 does each TLS handshake inside its accept loop (src/server/broker.rs:
//! `tls_accept` is awaited before the next `accept`, with no timeout): one client that opens
//! TCP to a TLS listener and sends nothing holds up every later client of that listener until
//! it goes. Our own readiness probes close at once; this shows why they must.

use std::time::Duration;

use unplug::event::Journal;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_holds_up_every_later_tls_handshake_on_rumqttd() {
    let broker = unplug::broker::builtin::start(&Journal::in_memory())
        .await
        .unwrap();
    let addr = broker.endpoints.tls.unwrap();
    let trust = broker.trust.clone().unwrap();

    // Nothing holds the listener: a handshake takes milliseconds.
    let quick = unplug::tls::connect(addr, &trust, Duration::from_secs(5)).await;
    assert!(quick.is_ok(), "{:?}", quick.err());
    drop(quick);

    let silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Give rumqttd's accept loop the silent one first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = unplug::tls::connect(addr, &trust, Duration::from_secs(2)).await;
    let Err(e) = held else {
        panic!("a handshake behind a silent connection completed");
    };
    assert!(format!("{e:#}").contains("no TLS handshake"), "{e:#}");

    // Once the silent one goes, the listener takes handshakes again.
    drop(silent);
    let after = unplug::tls::connect(addr, &trust, Duration::from_secs(5)).await;
    assert!(after.is_ok(), "{:?}", after.err());
}
