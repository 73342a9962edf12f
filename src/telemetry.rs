//! Logs and traces of the process. Logs are `tracing`'s formatted lines on stderr, filtered by
//! `RUST_LOG` (default `info`), written by a thread of their own through a bounded queue
//! ([`LOG_QUEUE_LINES`]): a slow or stalled reader of stderr never blocks a shard; lines that do
//! not fit are dropped and counted ([`dropped_log_lines`], on `/metrics`). When `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the same spans — `http.request` →
//! `vnet.connect` → `pool.session` → `pool.query` → `pool.checkout` — are also exported as
//! OpenTelemetry traces over OTLP/HTTP (protobuf), batched on a thread of their own; the other
//! `OTEL_*` variables (service name, headers, batch delays) are read by the OpenTelemetry SDK.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log lines queued for stderr at most; past it new lines are dropped (and counted).
pub const LOG_QUEUE_LINES: usize = 16_384;

/// Counts the log lines dropped because the queue was full.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Log lines dropped so far because stderr did not keep up.
pub fn dropped_log_lines() -> usize {
    DROPPED.get().map_or(0, ErrorCounter::dropped_lines)
}

/// How long exiting waits for the last traces to be sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The variables that turn trace export on.
const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];

/// Keeps trace export running; dropping it sends the spans still buffered (bounded by
/// [`FLUSH_TIMEOUT`]) and stops the exporter.
#[must_use = "dropping the guard stops trace export"]
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    /// Writes the queued log lines out when dropped.
    _logs: WorkerGuard,
}

impl Telemetry {
    /// Installs the global subscriber: formatted logs, and trace export when an OTLP endpoint is
    /// configured. Fails on an invalid endpoint, naming the variable.
    pub fn init() -> anyhow::Result<Telemetry> {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let (writer, logs_guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(LOG_QUEUE_LINES)
            .thread_name("switchyard-log")
            .finish(std::io::stderr());
        let _ = DROPPED.set(writer.error_counter());
        let logs =
            tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(std::io::stderr().is_terminal());
        let requested = export_requested();
        let traces = match requested {
            Some(var) => Some(otlp_provider().with_context(|| format!("{var}: cannot export traces"))?),
            None => None,
        };
        let layer = traces
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("switchyard")));
        tracing_subscriber::registry().with(filter).with(logs).with(layer).init();
        if let Some(var) = requested {
            tracing::info!("exporting traces over OTLP/HTTP ({var} is set)");
        }
        Ok(Telemetry { traces, _logs: logs_guard })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take()
            && let Err(error) = provider.shutdown_with_timeout(FLUSH_TIMEOUT)
        {
            eprintln!("warning: the last traces were not all exported: {error}");
        }
    }
}

/// The first endpoint variable that is set and not empty.
fn export_requested() -> Option<&'static str> {
    ENDPOINT_VARS.into_iter().find(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// A tracer provider exporting in batches over OTLP/HTTP (endpoint from the environment).
fn otlp_provider() -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder().with_http().build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("switchyard");
    }
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}
