//! Prometheus metrics of a gateway worker (`GET /metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verdict: &'static str,
    pub status: u16,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    /// Time to the end of the answer, as the caller sees it.
    pub latency: Histogram,
    /// Time the provider took to start answering (response headers).
    pub upstream_latency: Histogram,
    pub tokens: Family<TokenLabels, Counter>,
    /// Spend in micro-USD.
    pub cost_micros: Counter,
    /// Events appended to the spool but not yet stored (set at scrape).
    pub spool_depth: Gauge,
    /// Requests retried on a fallback target after an upstream failure.
    pub fallbacks: Counter,
    /// Budget held in this process's leases, micro-USD (set at scrape).
    pub budget_leased_micros: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub direction: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kt_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by verdict and HTTP status",
            requests.clone(),
        );
        let latency = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "request_duration_seconds",
            "Time to the end of the answer",
            latency.clone(),
        );
        let upstream_latency = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register(
            "upstream_duration_seconds",
            "Time until the provider starts answering",
            upstream_latency.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register("tokens", "Tokens reported by providers", tokens.clone());
        let cost_micros = Counter::default();
        registry.register("cost_micro_usd", "Spend in micro-USD", cost_micros.clone());
        let spool_depth = Gauge::default();
        registry.register(
            "spool_depth",
            "Events spooled locally and not yet stored in the database",
            spool_depth.clone(),
        );
        let fallbacks = Counter::default();
        registry.register(
            "fallbacks",
            "Requests retried on a fallback target after an upstream 5xx, timeout or connection failure",
            fallbacks.clone(),
        );
        let budget_leased_micros = Gauge::default();
        registry.register(
            "budget_leased_micro_usd",
            "Budget this process holds in leases (reservations, unstored spend and a spare slice)",
            budget_leased_micros.clone(),
        );
        Metrics {
            registry,
            fallbacks,
            budget_leased_micros,
            requests,
            latency,
            upstream_latency,
            tokens,
            cost_micros,
            spool_depth,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
