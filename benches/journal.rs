//! What one wire record costs the recorder's thread: a stream of 64-byte PUBLISHes (CONNECT
//! first) decoded by a `WireTap` and recorded into a journal that writes the run's files.
//!
//!   cargo bench --bench journal
//!
//! ```text
//!  32 KiB chunks -> WireTap::feed + flush_at -> Journal::record_at -> NAME.events.jsonl, NAME.log
//!  -> ns per record: the thread's CPU time (user + system, so the machine's other load does
//!     not count), best of 5, with the files and in memory only
//! ```

use std::time::Duration;

use unplug::event::{Echo, Journal};
use unplug::proxy::fault::Flow;
use unplug::proxy::wiretap::{shared_level, Stamp, WireTap};

const PACKET: usize = 64;
const CHUNK: usize = 32 * 1024;

fn stream(packets: usize) -> Vec<u8> {
    let mut s = vec![0x10, 17, 0, 4];
    s.extend_from_slice(b"MQTT");
    s.extend_from_slice(&[4, 0x02, 0, 60, 0, 5]);
    s.extend_from_slice(b"bench");
    for _ in 0..packets {
        let topic = b"bench/t";
        let body = PACKET - 2;
        s.extend_from_slice(&[0x30, body as u8, 0, topic.len() as u8]);
        s.extend_from_slice(topic);
        s.resize(s.len() + body - 2 - topic.len(), b'x');
    }
    s
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn per_record(journal: &Journal, bytes: &[u8], packets: usize) -> f64 {
    let mut tap = WireTap::new(1, Flow::Up, shared_level());
    let t0 = thread_cpu();
    for chunk in bytes.chunks(CHUNK) {
        tap.feed(chunk, false);
        tap.flush_at(journal, Stamp::now());
        // As the recorder does whenever it has caught up (here: after every chunk, the most
        // often it could).
        journal.write_out();
    }
    journal.flush().unwrap();
    (thread_cpu() - t0).as_secs_f64() * 1e9 / (packets + 1) as f64
}

fn main() {
    let packets = if cfg!(debug_assertions) {
        2_000
    } else {
        200_000
    };
    let bytes = stream(packets);
    let dir = std::env::temp_dir().join(format!("unplug-bench-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut files, mut memory) = (f64::MAX, f64::MAX);
    for i in 0..5 {
        let jsonl = std::fs::File::create(dir.join(format!("{i}.events.jsonl"))).unwrap();
        let log = std::fs::File::create(dir.join(format!("{i}.log"))).unwrap();
        let j = Journal::to_writers(jsonl, log, Echo::default(), |_| {});
        files = files.min(per_record(&j, &bytes, packets));
        drop(j.close());
        let j = Journal::in_memory();
        memory = memory.min(per_record(&j, &bytes, packets));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("journal: {packets} PUBLISH records, best of 5");
    println!("  with the run's files  {files:8.0} ns/record");
    println!("  in memory only        {memory:8.0} ns/record");
}
