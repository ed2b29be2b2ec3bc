//! `zoomstream backfill`: one source filled from the raw topic's history, with progress, by the
//! processor's backfill mode run in this process.
//!
//! A backfill reads under a group of its own (`<group>.backfill.<source>`). Once it has read
//! the raw topic to its end, this command commits the group's offsets once more with a
//! "finished" mark in their metadata. A second run for the same source would otherwise start
//! from those offsets and silently write nothing: it is refused unless `--reset` deletes the
//! group first. An interrupted run (offsets without the mark) resumes where it stopped.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use zoomstream_processors::{Config, Processor};
use zoomstream_runtime::shutdown;

/// The metadata of the offsets a finished backfill committed.
const FINISHED_MARK: &str = "zoomstream-backfill-finished";

#[derive(clap::Args)]
// The source is the subcommand's argument, not the processor's --backfill-source flag; the
// metrics endpoint takes a free loopback port so that a processor on this host keeps 9090.
#[command(mut_arg("backfill_source", |arg| arg
    .long(None)
    .value_name("SOURCE")
    .required(true)
    .help("The source to fill from the raw topic's history (a name in the sources file)")))]
#[command(mut_arg("metrics_listen", |arg| arg.default_value("127.0.0.1:0")))]
pub struct BackfillArgs {
    /// Start over from the beginning of the raw topic although this source's backfill already
    /// finished: deletes its group's committed offsets first.
    #[arg(long)]
    pub reset: bool,

    /// Time between progress lines (`5s`, `1m`).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub progress_every: Duration,

    #[command(flatten)]
    pub processor: Config,
}

pub async fn run(args: BackfillArgs) -> anyhow::Result<()> {
    let config = args.processor;
    let Some(source) = config.backfill_source.clone() else {
        bail!("name the source to backfill");
    };
    let group = config.effective_group_id();
    let offsets = GroupReader::new(&config, &group)?;
    let partitions = offsets.partitions()?;
    let committed = offsets.committed(&partitions)?;
    if committed.values().any(|c| c.finished) && !args.reset {
        bail!(
            "the backfill of source {source} already finished (group {group} holds its \
                 offsets); a new run would only read what arrived since.\n\
                 To backfill it again from the beginning of {raw}, run:\n  \
                 zoomstream backfill {source} --reset",
            raw = config.raw_topic,
        );
    }
    if args.reset {
        delete_group(&config, &group).await?;
        println!("backfill {source}: group {group} reset, starting from the beginning");
    } else if committed.values().any(|c| c.offset.is_some()) {
        println!("backfill {source}: resuming group {group} from its committed offsets");
    }
    // Progress is measured against the ends of the partitions as they are now.
    let ends = offsets.ends(&partitions)?;
    print_progress(&source, "starting", &offsets.committed(&partitions)?, &ends);

    let processor = Processor::build(config)
        .await
        .context("starting the backfill")?;
    // The processor cancels the token it runs under when it ends; a signal cancels the parent.
    let signal = shutdown::on_signal();
    let mut running = tokio::spawn(processor.run_until(signal.child_token()));
    let mut ticks = tokio::time::interval(args.progress_every);
    ticks.tick().await;
    let result = loop {
        tokio::select! {
            result = &mut running => break result.context("the backfill panicked")?,
            _ = ticks.tick() => {
                let committed = tokio::task::block_in_place(|| offsets.committed(&partitions))?;
                print_progress(&source, "reading", &committed, &ends);
            }
        }
    };
    result.context("the backfill stopped")?;
    if signal.is_cancelled() {
        let committed = offsets.committed(&partitions)?;
        print_progress(
            &source,
            "interrupted (run it again to resume)",
            &committed,
            &ends,
        );
        return Ok(());
    }
    let committed = offsets.mark_finished(&partitions, &ends)?;
    print_progress(&source, "finished", &committed, &ends);
    Ok(())
}

/// One line: records read (committed offset) of the end offset, in total and per partition.
fn print_progress(
    source: &str,
    state: &str,
    committed: &BTreeMap<i32, Committed>,
    ends: &BTreeMap<i32, i64>,
) {
    let mut total = (0, 0);
    let parts: Vec<String> = ends
        .iter()
        .map(|(partition, end)| {
            let read = committed
                .get(partition)
                .and_then(|c| c.offset)
                .unwrap_or(0)
                .min(*end);
            total.0 += read;
            total.1 += end;
            format!("p{partition} {read}/{end}")
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "backfill {source}: {state} {}/{} ({})",
        total.0,
        total.1,
        parts.join(", ")
    );
    let _ = out.flush();
}

/// A partition's committed offset, and whether a finished backfill committed it.
struct Committed {
    offset: Option<i64>,
    finished: bool,
}

/// Reads (and, once finished, marks) the backfill group's offsets without joining the group.
struct GroupReader {
    consumer: BaseConsumer,
    topic: String,
}

impl GroupReader {
    fn new(config: &Config, group: &str) -> anyhow::Result<GroupReader> {
        let consumer: BaseConsumer = config
            .kafka
            .client_config(&[
                ("group.id", group),
                ("client.id", "zoomstream-backfill-progress"),
                ("enable.auto.commit", "false"),
            ])
            .create()
            .context("creating the Kafka client for the group's offsets")?;
        Ok(GroupReader {
            consumer,
            topic: config.raw_topic.clone(),
        })
    }

    fn partitions(&self) -> anyhow::Result<Vec<i32>> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .context("fetching the raw topic's metadata")?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == self.topic)
            .context("Kafka did not describe the raw topic")?;
        if let Some(err) = topic.error() {
            bail!("raw topic {}: {}", self.topic, RDKafkaErrorCode::from(err));
        }
        Ok(topic.partitions().iter().map(|p| p.id()).collect())
    }

    fn committed(&self, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, Committed>> {
        let mut list = TopicPartitionList::new();
        for p in partitions {
            list.add_partition(&self.topic, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(list, Duration::from_secs(10))
            .context("reading the backfill group's committed offsets")?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(n) => Some(n),
                    _ => None,
                };
                let finished = e.metadata() == FINISHED_MARK;
                (e.partition(), Committed { offset, finished })
            })
            .collect())
    }

    fn ends(&self, partitions: &[i32]) -> anyhow::Result<BTreeMap<i32, i64>> {
        partitions
            .iter()
            .map(|p| {
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(&self.topic, *p, Duration::from_secs(10))
                    .context("reading the raw topic's end offsets")?;
                Ok((*p, high))
            })
            .collect()
    }

    /// Commits the group's offsets again, with the finished mark (a partition the backfill
    /// found empty gets its end). The group has no member any more: the processor left it.
    fn mark_finished(
        &self,
        partitions: &[i32],
        ends: &BTreeMap<i32, i64>,
    ) -> anyhow::Result<BTreeMap<i32, Committed>> {
        let committed = self.committed(partitions)?;
        let mut list = TopicPartitionList::new();
        for p in partitions {
            let offset = committed
                .get(p)
                .and_then(|c| c.offset)
                .or_else(|| ends.get(p).copied())
                .unwrap_or(0);
            let mut element = list.add_partition(&self.topic, *p);
            element.set_offset(Offset::Offset(offset))?;
            element.set_metadata(FINISHED_MARK);
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .context("marking the backfill group finished")?;
        self.committed(partitions)
    }
}

/// Deletes the backfill group (its committed offsets); a group that does not exist is fine.
async fn delete_group(config: &Config, group: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = config
        .kafka
        .client_config(&[])
        .create()
        .context("creating the Kafka admin client")?;
    let results = admin
        .delete_groups(&[group], &AdminOptions::new())
        .await
        .context("deleting the backfill group")?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((_, RDKafkaErrorCode::NonEmptyGroup)) => {
                bail!("group {group} has running members: stop the backfill that is running first")
            }
            Err((_, code)) => bail!("deleting group {group}: {code}"),
        }
    }
    Ok(())
}
