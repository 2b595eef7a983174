//! Group commit: requests for the same kind of write that arrive while one is being written go
//! into the next transaction together, so that they share its commit.
//!
//! Why: a transaction that updates a row holds that row until its commit is on disk. On
//! PostgreSQL that is one WAL flush (about 0.9 ms here), so writers of one hot row (the stock of a
//! SKU everyone is buying) go one per flush, whatever the cores could do (docs/performance.md,
//! "Reservations share a commit"). Written together they pay one flush between them.
//!
//! A [`Batcher`] is a queue and one task: the task takes the first job waiting, then whatever
//! else has arrived meanwhile (up to a limit; nothing is waited for, so a lone job goes at once),
//! hands them to the work function, and answers each caller with its own result. While that runs,
//! new jobs queue for the next batch: the busier it is, the more share a commit.
//!
//! A batch runs in the [`TraceContext`] of its first job, so that a lone job's transaction and the
//! events it writes belong to its request's trace as if it had run on the request's own task; the
//! other jobs of a batch share the first one's transaction, and its span is in the first's trace.
use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::telemetry::TraceContext;

/// A job queued, with the work it is done for and where its result goes.
struct Queued<J, R> {
    job: J,
    context: Option<TraceContext>,
    answer: oneshot::Sender<R>,
}

/// Jobs of type `J` answered with an `R` each, done a batch at a time by one task.
pub struct Batcher<J, R> {
    jobs: mpsc::Sender<Queued<J, R>>,
}

/// The task is gone: the runtime it ran on has shut down.
#[derive(Debug, thiserror::Error)]
#[error("the batch worker has stopped")]
pub struct Stopped;

impl<J: Send + 'static, R: Send + 'static> Batcher<J, R> {
    /// Starts the task on the current Tokio runtime. `work` gets the jobs of a batch (at most
    /// `most`, at least one) in arrival order and answers one result per job, in the same order
    /// (a job it answers nothing for gets [`Stopped`]). The task ends when the `Batcher` is
    /// dropped.
    pub fn spawn<F, Fut>(most: usize, work: F) -> Self
    where
        F: Fn(Vec<J>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let most = most.max(1);
        let (jobs, mut queue) = mpsc::channel::<Queued<J, R>>(most * 4);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let context = first.context.clone();
                let mut batch = vec![first];
                while batch.len() < most {
                    match queue.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let (jobs, answers): (Vec<J>, Vec<oneshot::Sender<R>>) =
                    batch.into_iter().map(|q| (q.job, q.answer)).unzip();
                let results = match context {
                    Some(context) => context.scope(work(jobs)).await,
                    None => work(jobs).await,
                };
                for (answer, result) in answers.into_iter().zip(results) {
                    // A caller that stopped waiting (its request was cancelled) is not told.
                    let _ = answer.send(result);
                }
            }
        });
        Self { jobs }
    }

    /// Queues `job` for the next batch and waits for its result. Cancelling the wait does not
    /// cancel the job once queued: it is done with its batch.
    pub async fn submit(&self, job: J) -> Result<R, Stopped> {
        let (answer, result) = oneshot::channel();
        let queued = Queued {
            job,
            context: TraceContext::current(),
            answer,
        };
        self.jobs.send(queued).await.map_err(|_| Stopped)?;
        result.await.map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn jobs_waiting_together_form_one_batch_and_each_gets_its_own_answer() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let batcher = Arc::new(Batcher::spawn(8, move |jobs: Vec<u32>| {
            seen.lock().unwrap().push(jobs.len());
            async move {
                // Long enough for the other callers to queue behind the first batch.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                jobs.into_iter().map(|j| j * 10).collect()
            }
        }));
        let calls: Vec<_> = (1..=20u32)
            .map(|j| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (j, batcher.submit(j).await.unwrap()) })
            })
            .collect();
        for call in calls {
            let (job, answer) = call.await.unwrap();
            assert_eq!(answer, job * 10);
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 20);
        assert!(sizes.iter().all(|&n| (1..=8).contains(&n)), "{sizes:?}");
        assert!(sizes.len() < 20, "some jobs shared a batch: {sizes:?}");
    }

    #[tokio::test]
    async fn a_lone_job_goes_at_once() {
        let batcher = Batcher::spawn(64, |jobs: Vec<&'static str>| async move {
            jobs.into_iter().map(str::len).collect()
        });
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), batcher.submit("abc"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer, 3);
    }
}
