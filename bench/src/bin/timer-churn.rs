//! Timer churn, in process: schedule N timers (1,000,000 by default) with
//! deadlines spread over 0–100 ms, cancel every other one, then run until
//! the rest have fired. Reports the time of each phase and the memory.
//!
//! Implementations (`--impl`):
//!
//! * `torsion`: `Reactor::call_later` with a callback, `DelayedCall::cancel`,
//!   `Reactor::run` until the last callback stops the reactor.
//! * `tokio-delayqueue`: `tokio_util::time::DelayQueue` — the fair peer: a
//!   timer wheel of cancellable entries (insert → key, `remove(key)`,
//!   `poll_expired`), the Tokio structure made for exactly this.
//! * `tokio-spawn`: one spawned task per timer awaiting `tokio::time::sleep`,
//!   cancelled by aborting its `JoinHandle` — what most Tokio code does,
//!   at the cost of a task per timer.
//!
//! Memory: `VmHWM` (peak RSS) minus the RSS before scheduling, and the RSS
//! after scheduling and after cancelling, from `/proc/self/status`. Run
//! each implementation in its own process.

use clap::{Parser, ValueEnum};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use torsion_bench::{procfs, report, runtime};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Impl {
    Torsion,
    TokioDelayqueue,
    TokioSpawn,
}

/// Schedules N timers, cancels half, fires the rest; reports phase times
/// and memory. Prints one `RESULT key=value ...` line.
#[derive(Parser, Debug)]
struct Args {
    #[arg(long = "impl", value_enum, default_value = "torsion")]
    imp: Impl,
    /// Timers to schedule.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    count: u64,
}

/// The deadline of timer `i`: spread over 0–100 ms in a scrambled order,
/// so the queue is not fed in sorted order.
fn delay(i: u64) -> Duration {
    Duration::from_micros((i.wrapping_mul(7919)) % 100_000)
}

fn rss_kib() -> f64 {
    procfs::status_kib("self", "VmRSS").unwrap_or(0) as f64
}

struct Phases {
    schedule: Duration,
    cancel: Duration,
    fire: Duration,
    rss_scheduled: f64,
    rss_cancelled: f64,
    fired: u64,
}

thread_local! {
    static FIRED: Cell<u64> = const { Cell::new(0) };
    static TARGET: Cell<u64> = const { Cell::new(0) };
    static REACTOR: RefCell<Option<torsion::Reactor>> = const { RefCell::new(None) };
}

fn torsion_fired() {
    let n = FIRED.get() + 1;
    FIRED.set(n);
    if n == TARGET.get() {
        REACTOR.with(|r| {
            if let Some(r) = r.borrow().as_ref() {
                r.stop();
            }
        });
    }
}

fn run_torsion(n: u64) -> std::io::Result<Phases> {
    let reactor = torsion::Reactor::new()?;
    REACTOR.with(|r| *r.borrow_mut() = Some(reactor.clone()));
    TARGET.set(n - n / 2);
    let t0 = Instant::now();
    let mut calls = Vec::with_capacity(n as usize);
    for i in 0..n {
        calls.push(reactor.call_later(delay(i), torsion_fired));
    }
    let schedule = t0.elapsed();
    let rss_scheduled = rss_kib();
    let t1 = Instant::now();
    for c in calls.iter().skip(1).step_by(2) {
        c.cancel();
    }
    let cancel = t1.elapsed();
    let rss_cancelled = rss_kib();
    let t2 = Instant::now();
    reactor.run()?;
    let fire = t2.elapsed();
    REACTOR.with(|r| r.borrow_mut().take());
    Ok(Phases {
        schedule,
        cancel,
        fire,
        rss_scheduled,
        rss_cancelled,
        fired: FIRED.get(),
    })
}

fn run_delayqueue(n: u64) -> std::io::Result<Phases> {
    let rt = runtime(1)?;
    rt.block_on(async move {
        let t0 = Instant::now();
        let mut q = tokio_util::time::DelayQueue::with_capacity(n as usize);
        let mut keys = Vec::with_capacity(n as usize);
        for i in 0..n {
            keys.push(q.insert(i, delay(i)));
        }
        let schedule = t0.elapsed();
        let rss_scheduled = rss_kib();
        let t1 = Instant::now();
        for k in keys.iter().skip(1).step_by(2) {
            q.remove(k);
        }
        let cancel = t1.elapsed();
        let rss_cancelled = rss_kib();
        let t2 = Instant::now();
        let mut fired = 0u64;
        while let Some(expired) = std::future::poll_fn(|cx| q.poll_expired(cx)).await {
            std::hint::black_box(expired.into_inner());
            fired += 1;
        }
        let fire = t2.elapsed();
        Ok(Phases {
            schedule,
            cancel,
            fire,
            rss_scheduled,
            rss_cancelled,
            fired,
        })
    })
}

static SPAWN_FIRED: AtomicU64 = AtomicU64::new(0);
static SPAWN_DONE: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn run_spawn(n: u64) -> std::io::Result<Phases> {
    let rt = runtime(1)?;
    let target = n - n / 2;
    rt.block_on(async move {
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n as usize);
        for i in 0..n {
            let d = delay(i);
            handles.push(tokio::spawn(async move {
                tokio::time::sleep(d).await;
                if SPAWN_FIRED.fetch_add(1, Ordering::Relaxed) + 1 == target {
                    SPAWN_DONE.notify_one();
                }
            }));
        }
        let schedule = t0.elapsed();
        let rss_scheduled = rss_kib();
        let t1 = Instant::now();
        for h in handles.iter().skip(1).step_by(2) {
            h.abort();
        }
        let cancel = t1.elapsed();
        let rss_cancelled = rss_kib();
        let t2 = Instant::now();
        let _ = tokio::time::timeout(Duration::from_secs(60), SPAWN_DONE.notified()).await;
        let fire = t2.elapsed();
        Ok(Phases {
            schedule,
            cancel,
            fire,
            rss_scheduled,
            rss_cancelled,
            fired: SPAWN_FIRED.load(Ordering::Relaxed),
        })
    })
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let base = rss_kib();
    let p = match args.imp {
        Impl::Torsion => run_torsion(args.count)?,
        Impl::TokioDelayqueue => run_delayqueue(args.count)?,
        Impl::TokioSpawn => run_spawn(args.count)?,
    };
    let peak = procfs::status_kib("self", "VmHWM").unwrap_or(0) as f64;
    let n = args.count as f64;
    report(&[
        ("ops", n),
        ("fired", p.fired as f64),
        ("schedule_ms", p.schedule.as_secs_f64() * 1e3),
        ("cancel_ms", p.cancel.as_secs_f64() * 1e3),
        (
            "schedule_cancel_ms",
            (p.schedule + p.cancel).as_secs_f64() * 1e3,
        ),
        ("fire_ms", p.fire.as_secs_f64() * 1e3),
        (
            "total_ms",
            (p.schedule + p.cancel + p.fire).as_secs_f64() * 1e3,
        ),
        ("peak_mib", (peak - base) / 1024.0),
        ("scheduled_mib", (p.rss_scheduled - base) / 1024.0),
        ("cancelled_mib", (p.rss_cancelled - base) / 1024.0),
        ("peak_bytes_per_timer", (peak - base) * 1024.0 / n),
    ]);
    Ok(())
}
