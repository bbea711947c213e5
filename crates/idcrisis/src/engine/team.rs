//! The engine's fork-join team: the threads every parallel kernel region runs on.
//!
//! A training step is a few hundred short parallel regions (0.05–1 ms each) back to back. On a
//! work-stealing pool whose idle threads go to sleep after a few microseconds, most regions began
//! by waking a sleeping thread and ended by waiting for one, through the kernel (futex) both
//! times: about 300 context switches per 20-layer step (BENCHMARKS.md). Here the caller posts a
//! region's tasks and works on them beside `threads − 1` helper threads, which poll for the next
//! region for [`SPIN`], then yield the CPU to other processes up to [`YIELD`], and only then
//! sleep on a condition variable.
//!
//! A region's tasks are cut into one contiguous block per thread, which that thread runs in
//! order; a thread that finishes its block claims the unclaimed tasks of the others. So a thread
//! mostly runs the same block of every region, step after step (the data it touched last time
//! is still in its core's cache), and an uneven region still finishes together. Which thread
//! runs a task can vary from run to run; kernels make each task's result depend only on its
//! index, so their results do not. A call made while the team is busy (from inside a task, or from a second thread using
//! the same engine) runs its tasks in order on the calling thread: the same results, later.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle helper polls for the next region before it starts yielding its CPU.
const SPIN: Duration = Duration::from_micros(50);
/// How long an idle helper keeps polling (yielding its CPU between polls) before it sleeps.
const YIELD: Duration = Duration::from_millis(2);

/// One region's tasks, as the threads see them: `f(i)` for each task index `i`.
type Job = &'static (dyn Fn(usize) + Sync);
/// A panic's payload, carried to the caller.
type Panic = Box<dyn std::any::Any + Send>;

/// What the caller and the helpers share.
struct Shared {
    /// The current region's number; a new one announces a region.
    epoch: AtomicU32,
    /// Per thread's block of tasks: the region's epoch (high 32 bits) and how many of the
    /// block's tasks are still unclaimed (low 32 bits). A task is claimed by decrementing it
    /// while the epoch is unchanged; block `b` of a region of `n` tasks on `t` threads holds tasks
    /// `b·n/t .. (b + 1)·n/t`, claimed in order.
    blocks: Vec<Block>,
    /// The current region's task count (read, like `job`, only after a claim).
    tasks: AtomicUsize,
    /// Tasks of the current region that have finished. Each thread adds its count once, when it
    /// finds nothing left to claim: one write per thread to this contended line, not one per
    /// task (per task it was 4% of a 20-layer step, the stalls after each locked add).
    done: AtomicUsize,
    /// The current region's job. Written by the caller only while no task can be claimed (before
    /// the epoch that announces it, after every task of the one before has finished), read only
    /// by a thread that has just claimed one of its tasks.
    job: UnsafeCell<Option<Job>>,
    /// The first panic of a task of the current region on a helper.
    panicked: Mutex<Option<Panic>>,
    /// Set while a region runs: a call that finds it set runs on its own thread.
    busy: AtomicBool,
    /// Helpers asleep on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    stop: AtomicBool,
}

/// One block's claim word, alone on its cache lines.
#[repr(align(128))]
struct Block(AtomicU64);

// SAFETY: every field but `job` is a synchronisation primitive; `job` is only accessed under
// the protocol its comment states (one writer while no reader can exist).
unsafe impl Sync for Shared {}

fn epoch(word: u64) -> u32 {
    (word >> 32) as u32
}

/// The first task of block `b` of `t` in a region of `n` tasks.
fn block_start(b: usize, t: usize, n: usize) -> usize {
    b * n / t
}

impl Shared {
    /// Claim and run tasks of epoch `e` until none is left, thread `me`'s block first, then the
    /// others'; returns a panic of the caller's own task (helpers record theirs in `panicked`).
    fn work(&self, e: u32, me: usize) -> Option<Panic> {
        let t = self.blocks.len();
        let mut payload = None;
        let mut ran = 0;
        for b in (me..t).chain(0..me) {
            let word = &self.blocks[b].0;
            let mut cur = word.load(Ordering::Acquire);
            loop {
                if epoch(cur) != e || cur as u32 == 0 {
                    break;
                }
                // The block's owner takes half of what is left at a time (fewer locked
                // operations, each of which waits for the previous task's stores), a thief one.
                let left = cur as u32 as usize;
                let take = if b == me { left.div_ceil(2) } else { 1 };
                match word.compare_exchange_weak(cur, cur - take as u64, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        // SAFETY (`job`, `tasks`): the claim succeeded in epoch `e`, so that
                        // region has tasks not yet counted in `done` (these) and the caller has
                        // not moved on.
                        let n = self.tasks.load(Ordering::Relaxed);
                        let first = block_start(b + 1, t, n) - left;
                        let f = unsafe { (*self.job.get()).expect("a posted region has its job") };
                        for i in first..first + take {
                            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                                if me == 0 {
                                    payload.get_or_insert(p);
                                } else {
                                    self.panicked.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(p);
                                }
                            }
                        }
                        ran += take;
                        cur = word.load(Ordering::Acquire);
                    }
                    Err(now) => cur = now,
                }
            }
        }
        // After this, the thread reads nothing of epoch `e`'s region (`job`, `tasks`): the
        // caller moves on once every thread that ran a task has counted it.
        if ran > 0 {
            self.done.fetch_add(ran, Ordering::Release);
        }
        payload
    }

    /// A helper's life: wait for a new epoch, work on it, until `stop`.
    fn helper(&self, me: usize) {
        let mut seen = self.epoch.load(Ordering::Acquire);
        loop {
            let Some(e) = self.next_epoch(seen) else { return };
            seen = e;
            self.work(e, me);
        }
    }

    /// Wait for an epoch other than `seen` (polling, then yielding, then asleep); `None` on stop.
    fn next_epoch(&self, seen: u32) -> Option<u32> {
        let start = Instant::now();
        let mut polls = 0u32;
        // How long this wait has lasted, read from the clock every 64 polls.
        let mut waited = Duration::ZERO;
        loop {
            let e = self.epoch.load(Ordering::Acquire);
            if e != seen {
                return Some(e);
            }
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(64) {
                waited = start.elapsed();
            }
            if waited < SPIN {
                std::hint::spin_loop();
            } else if waited < YIELD {
                std::thread::yield_now();
            } else {
                let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                while self.epoch.load(Ordering::SeqCst) == seen && !self.stop.load(Ordering::SeqCst) {
                    guard = self.wake.wait(guard).unwrap_or_else(|p| p.into_inner());
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
                if self.stop.load(Ordering::Acquire) {
                    return None;
                }
                return Some(self.epoch.load(Ordering::Acquire));
            }
        }
    }
}

/// `threads − 1` helper threads and the caller's side of the protocol (module docs).
pub(super) struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Team {
    /// A team of `threads` (the caller and `threads − 1` helpers named `idcrisis-team-N`).
    pub(super) fn new(threads: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            epoch: AtomicU32::new(0),
            blocks: (0..threads.max(1)).map(|_| Block(AtomicU64::new(0))).collect(),
            tasks: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            panicked: Mutex::new(None),
            busy: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let mut team = Team { shared, helpers: Vec::with_capacity(threads.saturating_sub(1)) };
        for i in 1..threads {
            let s = Arc::clone(&team.shared);
            // On failure `team` drops here, which stops the helpers already started.
            team.helpers.push(std::thread::Builder::new().name(format!("idcrisis-team-{i}")).spawn(move || s.helper(i))?);
        }
        Ok(team)
    }

    /// Run `f(i)` for every `i < tasks` on the team, the calling thread included; returns when
    /// all have run. A panic in a task is raised again here with its payload (the first one's,
    /// if several panic), after every task has run, on the team or not.
    pub(super) fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        if tasks <= 1 || tasks > u32::MAX as usize || self.helpers.is_empty() || s.busy.swap(true, Ordering::Acquire) {
            let mut first = None;
            for i in 0..tasks {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                    first.get_or_insert(p);
                }
            }
            if let Some(p) = first {
                resume_unwind(p);
            }
            return;
        }
        s.done.store(0, Ordering::Relaxed);
        // SAFETY: the lifetime is erased only for the duration of this call: `job` is cleared
        // before it returns, after every task (the only readers) has finished. No task can be
        // claimed now (the last region's are all claimed and finished), so nothing reads `job`.
        unsafe {
            *s.job.get() = Some(std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f));
        }
        s.tasks.store(tasks, Ordering::Relaxed);
        let e = s.epoch.load(Ordering::Relaxed).wrapping_add(1);
        let t = s.blocks.len();
        for (b, word) in s.blocks.iter().enumerate() {
            let len = block_start(b + 1, t, tasks) - block_start(b, t, tasks);
            word.0.store(((e as u64) << 32) | len as u64, Ordering::Relaxed);
        }
        s.epoch.store(e, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|p| p.into_inner());
            s.wake.notify_all();
        }
        let own = s.work(e, 0);
        let start = Instant::now();
        let mut polls = 0u32;
        while s.done.load(Ordering::Acquire) < tasks {
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(64) && start.elapsed() > SPIN {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: every task has finished and none is left to claim: no thread reads `job`.
        unsafe {
            *s.job.get() = None;
        }
        let helper = s.panicked.lock().unwrap_or_else(|p| p.into_inner()).take();
        s.busy.store(false, Ordering::Release);
        if let Some(p) = own.or(helper) {
            resume_unwind(p);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_all();
        }
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

/// A mutable slice that the tasks of one region cut into disjoint chunks by task index.
pub struct Shards<'a, T> {
    ptr: *mut T,
    len: usize,
    chunk: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `Shards` hands out disjoint chunks of a slice it borrows mutably, each to the one task
// with its index (the caller of `chunk` promises that), so sharing it shares no element.
unsafe impl<T: Send> Sync for Shards<'_, T> {}

impl<'a, T> Shards<'a, T> {
    /// `x` in chunks of `chunk` elements (the last may be shorter); `chunk > 0`.
    pub fn new(x: &'a mut [T], chunk: usize) -> Self {
        assert!(chunk > 0, "chunks of 0 elements");
        Shards { ptr: x.as_mut_ptr(), len: x.len(), chunk, _borrow: std::marker::PhantomData }
    }

    /// How many chunks there are.
    pub fn count(&self) -> usize {
        self.len.div_ceil(self.chunk)
    }

    /// Chunk `i`, elements `i·chunk .. min((i + 1)·chunk, len)`.
    ///
    /// # Safety
    /// Each index may be taken at most once while the chunks live (one task per index).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn chunk(&self, i: usize) -> &'a mut [T] {
        let lo = i * self.chunk;
        assert!(lo < self.len || (lo == 0 && self.len == 0), "chunk {i} of {}", self.count());
        let n = self.chunk.min(self.len - lo);
        // SAFETY: in bounds (asserted); disjoint from every other index's chunk, and the caller
        // takes each index once, so no two live references overlap.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(lo), n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_and_panics_come_back() {
        let team = Team::new(3).unwrap();
        for tasks in [0usize, 1, 2, 5, 64, 1000] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            team.run(tasks, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "{tasks} tasks");
        }
        // A region from inside a task runs on that task's thread, in full.
        let sum = AtomicUsize::new(0);
        team.run(4, &|_| {
            team.run(10, &|j| {
                sum.fetch_add(j, Ordering::Relaxed);
            })
        });
        assert_eq!(sum.load(Ordering::Relaxed), 4 * 45);
        // A panic on any thread reaches the caller with its message after every task has run,
        // on the team or nested, and the team goes on.
        for nested in [false, true] {
            let ran = AtomicUsize::new(0);
            let region = || {
                team.run(50, &|i| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    assert!(i != 17, "task 17 failed");
                })
            };
            let r = catch_unwind(AssertUnwindSafe(|| {
                if nested {
                    team.run(2, &|j| {
                        if j == 0 {
                            region()
                        }
                    })
                } else {
                    region()
                }
            }));
            let payload = r.expect_err("the panic is raised");
            let message = payload.downcast_ref::<&str>().map(|m| m.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
            let message = message.unwrap_or_default();
            assert_eq!(message, "task 17 failed", "nested: {nested}");
            assert_eq!(ran.load(Ordering::Relaxed), 50, "nested: {nested}");
        }
        let count = AtomicUsize::new(0);
        std::thread::sleep(YIELD * 2); // the helpers are asleep now: the region must wake them
        team.run(200, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 200);
    }

    #[test]
    fn two_callers_sharing_a_team_each_get_every_task() {
        // Two threads using one engine at once (two Python threads, say): whichever finds the
        // team busy runs its region itself, and neither loses or repeats a task.
        let team = Team::new(2).unwrap();
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            for caller in 0..2usize {
                let (team, start) = (&team, &start);
                scope.spawn(move || {
                    start.wait();
                    for round in 0..2000usize {
                        let tasks = 2 + (round * 7 + caller) % 40;
                        let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                        team.run(tasks, &|i| {
                            // A few microseconds of work, so that the two callers' regions overlap.
                            std::hint::black_box((0..500u64).fold(i as u64, |a, b| a.wrapping_mul(31) ^ b));
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "caller {caller}, round {round}");
                    }
                });
            }
        });
    }

    #[test]
    fn shards_cover_the_slice() {
        let team = Team::new(2).unwrap();
        let mut x = vec![0usize; 1003];
        let s = Shards::new(&mut x, 100);
        assert_eq!(s.count(), 11);
        // SAFETY: one task per index.
        team.run(s.count(), &|i| unsafe { s.chunk(i) }.iter_mut().for_each(|v| *v = i + 1));
        assert!(x.iter().enumerate().all(|(j, v)| *v == j / 100 + 1));
    }
}
