//! Durable job engine.
//!
//! Jobs are rows in the database, inserted in the same transaction as the
//! state change that needs them (a challenge moving to `processing`, an order
//! to `processing`), so an HTTP response is only sent once its job is durable.
//! Workers claim a job with a lease; a job whose worker died is claimed again
//! when the lease runs out. A handler records its effect and deletes its job
//! in one transaction, so a retried job sees the effect and does nothing.
//!
//! Hand-off: a job enqueued on this node is written already leased to the
//! node ([`Jobs::enqueue`]) and, once its transaction committed, run at once by
//! the request that queued it when one of the `workers` slots is free
//! ([`Jobs::run_now`]; it goes on in a task of its own if it outlasts the
//! request's wait), or else handed to a worker through memory
//! ([`JobWaker::hand_off`]) — no claim statement either way. If the process
//! dies first, the lease runs out and the job is claimed from the database
//! like any other. Polling with `idle-min..idle-max` backoff is only the
//! safety net (jobs of a node that died, retries coming due). Workers and
//! requests share the slots, so at most `workers` jobs run at once.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Workers;
use crate::store::jobs::{ClaimedJob, JobKind};
use crate::store::{now_ms, Store, Tx};

/// What runs a job of any kind: the engine knows job kinds and this trait,
/// not what the jobs do (the registration authority implements it). A
/// handler records its effect and deletes its job in one transaction, and
/// is idempotent: a job is run again when its worker died.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt of `job`.
    fn run(&self, job: &ClaimedJob) -> impl Future<Output = anyhow::Result<Outcome>> + Send;
}

/// The job engine's side of the server: the queue in memory, the worker
/// slots, the settings and the store the jobs live in. Built once by the
/// server's composition root and shared.
#[derive(Debug)]
pub struct Jobs {
    store: Store,
    waker: JobWaker,
    settings: Workers,
    node_id: String,
}

/// What identifies a job: its kind and subject.
type JobId = (JobKind, String);

fn job_id(job: &ClaimedJob) -> JobId {
    (job.kind, job.subject.clone())
}

/// Jobs enqueued on this node, waiting for a worker; the signal that wakes
/// one; the requests waiting for a job's attempt to end; the slots that
/// bound how many jobs run at once (`workers.workers`), and the jobs that
/// a request started and left running.
#[derive(Clone, Debug)]
pub struct JobWaker {
    ready: Arc<Mutex<VecDeque<ClaimedJob>>>,
    signal: Arc<Notify>,
    waiting: Arc<Mutex<HashMap<JobId, oneshot::Sender<()>>>>,
    slots: Arc<Semaphore>,
    detached: TaskTracker,
    accounts: Arc<Mutex<HashMap<String, u64>>>,
}

/// One of an account's validations running (see
/// [`JobWaker::account_slot`]); dropping it frees the place.
#[derive(Debug)]
pub struct AccountSlot {
    accounts: Arc<Mutex<HashMap<String, u64>>>,
    account: String,
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut map = lock(&self.accounts);
        if let Some(n) = map.get_mut(&self.account) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.account);
            }
        }
    }
}

impl JobWaker {
    /// A waker for `workers` concurrent jobs.
    pub fn new(workers: &Workers) -> JobWaker {
        let slots = usize::try_from(workers.workers.get()).unwrap_or(usize::MAX);
        JobWaker {
            ready: Arc::default(),
            signal: Arc::default(),
            waiting: Arc::default(),
            slots: Arc::new(Semaphore::new(slots.min(Semaphore::MAX_PERMITS))),
            detached: TaskTracker::new(),
            accounts: Arc::default(),
        }
    }

    /// A place for one more running validation of `account`, unless `cap`
    /// of its validations already run on this node: one account's slow or
    /// blackholed validations then cannot hold every worker slot.
    pub fn account_slot(&self, account: &str, cap: u64) -> Option<AccountSlot> {
        let mut map = lock(&self.accounts);
        let running = map.entry(account.to_owned()).or_insert(0);
        if *running >= cap {
            return None;
        }
        *running += 1;
        Some(AccountSlot {
            accounts: self.accounts.clone(),
            account: account.to_owned(),
        })
    }

    /// A worker slot, if one is free.
    fn free_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Runs `attempt` in `slot` on the calling task for up to `wait`; then
    /// it goes on in a task of its own (still in its slot), which a drain
    /// waits for.
    async fn run_in(
        &self,
        slot: OwnedSemaphorePermit,
        attempt: impl std::future::Future<Output = ()> + Send + 'static,
        wait: Duration,
    ) {
        let mut attempt = Box::pin(async move {
            attempt.await;
            drop(slot);
        });
        if tokio::time::timeout(wait, &mut attempt).await.is_err() {
            self.detached.spawn(attempt);
        }
    }

    /// Gives a job enqueued by [`Jobs::enqueue`] (after its transaction committed)
    /// to an idle worker, or to the next one to go idle; without a job (it
    /// waits in the database), wakes a worker to poll for it.
    pub fn hand_off(&self, job: Option<ClaimedJob>) {
        if let Some(job) = job {
            lock(&self.ready).push_back(job);
        }
        self.signal.notify_one();
    }

    /// [`hand_off`](Self::hand_off), then waits up to `wait` for the job's
    /// first attempt to end (done, failed, or waiting for the CA).
    pub async fn hand_off_and_wait(&self, job: Option<ClaimedJob>, wait: Duration) {
        let Some(id) = job.as_ref().map(job_id).filter(|_| !wait.is_zero()) else {
            self.hand_off(job);
            return;
        };
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), tx);
        self.hand_off(job);
        if tokio::time::timeout(wait, rx).await.is_err() {
            lock(&self.waiting).remove(&id);
        }
    }

    /// The lease (ms) of a job to hand off in memory, or None when
    /// `queue-size` jobs already wait there.
    fn lease_for_new_job(&self, w: &Workers) -> Option<i64> {
        ((lock(&self.ready).len() as u64) < w.queue_size.get())
            .then(|| w.lease.get().as_millis() as i64)
    }

    fn take(&self) -> Option<ClaimedJob> {
        lock(&self.ready).pop_front()
    }

    /// Tells whoever waits for this job that its attempt ended.
    fn attempt_ended(&self, id: &JobId) {
        if let Some(tx) = lock(&self.waiting).remove(id) {
            let _ = tx.send(());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Jobs {
    /// The engine of node `node_id` over `store`, with `settings.workers`
    /// slots.
    pub fn new(store: Store, settings: Workers, node_id: String) -> Jobs {
        Jobs {
            waker: JobWaker::new(&settings),
            store,
            settings,
            node_id,
        }
    }

    /// Wakes an idle worker to poll the database: another node queued a
    /// job that any node may run (PostgreSQL `NOTIFY`, see
    /// `Store::join_cluster`).
    pub fn wake_workers(&self) {
        self.waker.signal.notify_one();
    }

    /// The `workers` settings.
    pub fn settings(&self) -> &Workers {
        &self.settings
    }

    /// Lease owner of the jobs handed off within this node.
    fn handoff_owner(&self) -> String {
        format!("{}/handoff", self.node_id)
    }

    /// Enqueues a job in the caller's transaction, leased to this node; give
    /// the result to [`run_now`](Self::run_now) once the transaction
    /// committed. None when the same job was already queued (it runs on its
    /// own), or when `queue-size` jobs already wait in memory: then the job
    /// is written with an expired lease and a worker's poll claims it from
    /// the database.
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        kind: JobKind,
        subject: &str,
    ) -> crate::store::Result<Option<ClaimedJob>> {
        let lease = self.waker.lease_for_new_job(&self.settings);
        let job = Store::enqueue_leased_job(
            tx,
            kind,
            subject,
            &self.handoff_owner(),
            lease.unwrap_or(-1),
        )
        .await?;
        Ok(job.filter(|_| lease.is_some()))
    }

    /// Runs a job that [`enqueue`](Self::enqueue) handed out (once its
    /// transaction committed) with `handler` on the calling task, when a
    /// worker slot is free, for up to `wait`; a job still running then goes
    /// on in a task of its own and the caller returns. Without a free slot
    /// the job goes to the workers' queue and the caller waits as long for
    /// its attempt to end; without a job (it waits in the database) a
    /// worker is woken to poll for it.
    ///
    /// Running on the request's task saves the two wake-ups of a hand-off
    /// (worker in, request out), which showed in the profile.
    pub async fn run_now<H: JobHandler>(
        self: &Arc<Self>,
        handler: &Arc<H>,
        job: Option<ClaimedJob>,
        wait: Duration,
    ) {
        let Some(job) = job else {
            self.waker.hand_off(None);
            return;
        };
        let Some(slot) = self.waker.free_slot() else {
            return self.waker.hand_off_and_wait(Some(job), wait).await;
        };
        let (jobs, handler) = (self.clone(), handler.clone());
        let attempt = async move { run_one(&jobs, handler.as_ref(), job).await };
        self.waker.run_in(slot, attempt, wait).await;
    }

    /// A place for one more running validation of `account` (see
    /// [`JobWaker::account_slot`]).
    pub fn account_slot(&self, account: &str, cap: u64) -> Option<AccountSlot> {
        self.waker.account_slot(account, cap)
    }
}

/// What a handler decided.
#[derive(Debug)]
pub enum Outcome {
    /// The job's effect is recorded and the job row deleted.
    Done,
    /// A transient failure: run again after a backoff.
    Retry(String),
    /// Nothing failed, the job waits for someone else (a CA officer):
    /// run again after a backoff.
    Wait(String),
    /// Not run now, for fairness (its account has enough validations
    /// running): run again after `base-backoff`, without growing backoff.
    Defer(String),
}

/// Attempts after which a transiently failing job gives up and fails its
/// order; with the default backoff (1s doubling to 2m) that is about 15 min.
pub const MAX_ATTEMPTS: i64 = 12;

/// Handle on the running worker pool.
pub struct WorkerPool {
    tasks: JoinSet<()>,
    stop: CancellationToken,
    jobs: Arc<Jobs>,
}

impl WorkerPool {
    /// Starts `workers.workers` workers running `handler`.
    pub fn start<H: JobHandler>(jobs: Arc<Jobs>, handler: Arc<H>) -> WorkerPool {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for i in 0..jobs.settings.workers.get() {
            let (jobs, handler, stop) = (jobs.clone(), handler.clone(), stop.clone());
            tasks.spawn(async move { worker_loop(jobs, handler, i, stop).await });
        }
        WorkerPool { tasks, stop, jobs }
    }

    /// Stops claiming new jobs and waits up to `timeout` for running ones.
    /// Jobs still running after that are abandoned; their lease expires and
    /// another node (or the next start) picks them up. Jobs handed off but
    /// not started are put back in the queue, runnable at once.
    pub async fn drain(mut self, timeout: Duration) {
        self.stop.cancel();
        let jobs = self.jobs.clone();
        let detached = &jobs.waker.detached;
        detached.close();
        let wait = async {
            while self.tasks.join_next().await.is_some() {}
            detached.wait().await;
        };
        if tokio::time::timeout(timeout, wait).await.is_err() {
            tracing::warn!(target: "jobs", "drain timeout reached; abandoning running jobs to lease expiry");
            self.tasks.abort_all();
        }
        while let Some(job) = jobs.waker.take() {
            if let Err(e) = jobs
                .store
                .retry_job(&job, now_ms(), "released at shutdown")
                .await
            {
                tracing::warn!(target: "jobs", kind = job.kind.as_str(), subject = %job.subject, error = %e, "cannot release a job at shutdown; its lease will expire");
            }
        }
    }
}

async fn worker_loop<H: JobHandler>(
    s: Arc<Jobs>,
    handler: Arc<H>,
    index: u64,
    stop: CancellationToken,
) {
    let w = &s.settings;
    let owner = format!("{}/{index}", s.node_id);
    let lease = w.lease.get();
    let idle_min = w.idle_min.get();
    let idle_max = w.idle_max.get();
    let mut idle = idle_min;
    loop {
        let slot: OwnedSemaphorePermit = tokio::select! {
            slot = s.waker.slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = stop.cancelled() => return,
        };
        if stop.is_cancelled() {
            return;
        }
        if let Some(job) = s.waker.take() {
            idle = idle_min;
            let id = job_id(&job);
            run_one(&s, handler.as_ref(), job).await;
            s.waker.attempt_ended(&id);
            continue;
        }
        match s.store.claim_job(&owner, lease.as_millis() as i64).await {
            Ok(Some(job)) => {
                idle = idle_min;
                let id = job_id(&job);
                run_one(&s, handler.as_ref(), job).await;
                s.waker.attempt_ended(&id);
            }
            Ok(None) => {
                // Idle: the slot is free for a request to run a job.
                drop(slot);
                let mut wait = idle;
                if let Ok(Some(next)) = s.store.next_job_time().await {
                    let until = Duration::from_millis((next - now_ms()).max(0) as u64);
                    wait = wait.min(until.max(Duration::from_millis(1)));
                }
                tokio::select! {
                    _ = s.waker.signal.notified() => { idle = idle_min; }
                    _ = tokio::time::sleep(wait) => { idle = (idle * 2).min(idle_max); }
                    _ = stop.cancelled() => return,
                }
            }
            Err(e) => {
                drop(slot);
                tracing::error!(target: "jobs", error = %e, "cannot claim a job");
                tokio::select! {
                    _ = tokio::time::sleep(idle_max) => {}
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// Margin kept between a handler's deadline and its lease's end.
const LEASE_MARGIN: Duration = Duration::from_millis(500);

/// Runs one attempt of `job` inside a `job` span with a request id of its
/// own, so every log line of the attempt carries it.
async fn run_one<H: JobHandler>(s: &Jobs, handler: &H, job: ClaimedJob) {
    use tracing::Instrument;
    let id = crate::telemetry::new_request_id();
    let span = tracing::info_span!("job", request_id = %id, kind = job.kind.as_str(), subject = %job.subject, attempt = job.attempts);
    crate::telemetry::scope_request_id(id, run_attempt(s, handler, job).instrument(span)).await
}

async fn run_attempt<H: JobHandler>(s: &Jobs, handler: &H, mut job: ClaimedJob) {
    let lease = s.settings.lease.get();
    // A job handed off in memory may have waited for a worker; renew its
    // lease when less than half of it is left, so the handler gets its time.
    let left = Duration::from_millis((job.lease_until - now_ms()).max(0) as u64);
    if left < lease / 2 {
        let until = now_ms() + lease.as_millis() as i64;
        match s.store.renew_lease(&job, until).await {
            Ok(true) => job.lease_until = until,
            Ok(false) => {
                tracing::debug!(target: "jobs", "lease lost before the job started; another worker has it");
                return;
            }
            Err(e) => {
                tracing::error!(target: "jobs", error = %e, "cannot renew a job's lease; it runs after the lease expires");
                return;
            }
        }
    }
    // A handler must finish within its lease, or another worker may start
    // the same job; the handlers are idempotent, this keeps them honest.
    let budget = Duration::from_millis((job.lease_until - now_ms()).max(0) as u64)
        .saturating_sub(LEASE_MARGIN)
        .max(Duration::from_secs(1));
    let result = tokio::time::timeout(budget, handler.run(&job)).await;
    let outcome = match result {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => Outcome::Retry(e.to_string()),
        Err(_) => Outcome::Retry(format!("job exceeded its lease budget of {budget:?}")),
    };
    let w = &s.settings;
    let (reason, delay) = match outcome {
        Outcome::Done => {
            tracing::debug!(target: "jobs", "job done");
            return;
        }
        Outcome::Wait(reason) => {
            let delay = backoff(w, job.attempts);
            tracing::info!(target: "jobs", %reason, retry_in = ?delay, "job waiting");
            (reason, delay)
        }
        Outcome::Retry(reason) => {
            let delay = backoff(w, job.attempts);
            tracing::warn!(target: "jobs", %reason, retry_in = ?delay, "job failed transiently");
            (reason, delay)
        }
        Outcome::Defer(reason) => {
            let delay = w.base_backoff.get();
            tracing::debug!(target: "jobs", %reason, retry_in = ?delay, "job deferred");
            (reason, delay)
        }
    };
    if let Err(e) = s
        .store
        .retry_job(&job, now_ms() + delay.as_millis() as i64, &reason)
        .await
    {
        tracing::error!(target: "jobs", error = %e, "cannot reschedule job; its lease will expire");
    }
}

/// Exponential backoff: `base * 2^(attempts-1)`, capped at `max-backoff`.
pub fn backoff(w: &Workers, attempts: i64) -> Duration {
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let d = w
        .base_backoff
        .get()
        .saturating_mul(2u32.saturating_pow(exp));
    d.min(w.max_backoff.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64) -> ClaimedJob {
        ClaimedJob {
            kind: JobKind::Issue,
            subject: format!("order-{id}"),
            attempts: 1,
            lease_owner: "node/handoff".into(),
            lease_until: now_ms() + 30_000,
        }
    }

    #[test]
    fn jobs_beyond_queue_size_are_not_leased_for_memory() {
        let w = Workers {
            queue_size: std::num::NonZeroU64::MIN,
            ..Default::default()
        };
        let waker = JobWaker::new(&Workers::default());
        assert_eq!(waker.lease_for_new_job(&w), Some(30_000));
        waker.hand_off(Some(job(1)));
        assert_eq!(waker.lease_for_new_job(&w), None, "the queue is full");
        assert_eq!(waker.take().map(|j| j.subject), Some("order-1".into()));
        assert_eq!(waker.lease_for_new_job(&w), Some(30_000));
    }

    #[tokio::test]
    async fn a_waiting_request_is_released_when_the_attempt_ends() {
        let waker = JobWaker::new(&Workers::default());
        let worker = waker.clone();
        let run = tokio::spawn(async move {
            // The worker side: take the job, end its attempt.
            loop {
                if let Some(j) = worker.take() {
                    worker.attempt_ended(&job_id(&j));
                    return j.subject;
                }
                worker.signal.notified().await;
            }
        });
        waker
            .hand_off_and_wait(Some(job(7)), Duration::from_secs(3600))
            .await;
        assert_eq!(run.await.unwrap(), "order-7");
        assert!(lock(&waker.waiting).is_empty());
    }

    fn one_worker() -> JobWaker {
        JobWaker::new(&Workers {
            workers: std::num::NonZeroU64::MIN,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_quick_attempt_ends_on_the_calling_task_and_frees_its_slot() {
        let waker = one_worker();
        let slot = waker.free_slot().expect("one slot");
        assert!(waker.free_slot().is_none(), "one job at a time");
        let (ran, ended) = oneshot::channel();
        let attempt = async move {
            let _ = ran.send(());
        };
        waker.run_in(slot, attempt, Duration::from_secs(3600)).await;
        assert!(ended.await.is_ok());
        assert!(waker.detached.is_empty(), "nothing was left running");
        assert!(waker.free_slot().is_some());
    }

    #[tokio::test]
    async fn a_long_attempt_goes_on_detached_in_its_slot_and_a_drain_waits_for_it() {
        let waker = one_worker();
        let slot = waker.free_slot().expect("one slot");
        let (finish, finished) = oneshot::channel::<()>();
        let attempt = async move {
            let _ = finished.await;
        };
        // The attempt outlives the caller's wait: the caller returns.
        waker.run_in(slot, attempt, Duration::from_millis(1)).await;
        assert_eq!(waker.detached.len(), 1);
        assert!(
            waker.free_slot().is_none(),
            "the detached attempt keeps its slot"
        );
        finish.send(()).unwrap();
        waker.detached.close();
        waker.detached.wait().await;
        assert!(waker.free_slot().is_some(), "its slot is free again");
    }

    #[test]
    fn an_account_gets_at_most_its_cap_of_validation_slots() {
        let waker = JobWaker::new(&Workers::default());
        let a1 = waker.account_slot("a", 2).expect("first");
        let a2 = waker.account_slot("a", 2).expect("second");
        assert!(waker.account_slot("a", 2).is_none(), "cap reached");
        let b = waker
            .account_slot("b", 2)
            .expect("another account is not held up");
        drop(a1);
        let a3 = waker.account_slot("a", 2).expect("a place freed");
        drop((a2, a3, b));
        assert!(lock(&waker.accounts).is_empty(), "no account left behind");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let w = Workers::default();
        assert_eq!(backoff(&w, 1), Duration::from_secs(1));
        assert_eq!(backoff(&w, 2), Duration::from_secs(2));
        assert_eq!(backoff(&w, 5), Duration::from_secs(16));
        assert_eq!(backoff(&w, 20), Duration::from_secs(120));
    }
}
