//! Effective OpenTelemetry settings: the `telemetry { }` conf block first, then the
//! standard `OTEL_*` environment variables for whatever the block leaves unset.
//!
//! Pure (the environment is passed in as a lookup function) so the precedence rules are
//! unit-tested without touching the process environment.

use std::time::Duration;

use crate::config::TelemetryConfig;

/// What to run. `None` from [`Settings::resolve`] means telemetry is off: no exporter,
/// no background thread, no span is ever created.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Collector endpoint from the conf block; `None` lets the OTLP exporter read
    /// `OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT` itself (as documented by OTel).
    pub endpoint: Option<String>,
    /// For the log line: the endpoint in use, whichever source gave it.
    pub endpoint_display: String,
    /// `service.name`; `None` = `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, else "tern".
    pub service_name: Option<String>,
    pub traces: bool,
    pub metrics: bool,
    /// Share of traces kept, for lifecycle spans and traced messages alike.
    pub ratio: f64,
    /// The sampler comes from `OTEL_TRACES_SAMPLER` (the SDK reads it); tern sets
    /// `ParentBased(TraceIdRatioBased(ratio))` otherwise.
    pub sampler_from_env: bool,
    /// `None` = `OTEL_METRIC_EXPORT_INTERVAL` or the SDK default (60 s).
    pub metrics_interval: Option<Duration>,
}

const ENDPOINT_VARS: &[&str] = &[
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
];

impl Settings {
    /// Telemetry is on when an endpoint is configured (conf `otlp_endpoint` or an
    /// `OTEL_EXPORTER_OTLP_*ENDPOINT` variable), `OTEL_SDK_DISABLED` is not true, and at
    /// least one of traces and metrics is left on.
    pub fn resolve(c: &TelemetryConfig, env: impl Fn(&str) -> Option<String>) -> Option<Settings> {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return None;
        }
        let env_endpoint = ENDPOINT_VARS.iter().find_map(|k| env(k));
        let endpoint_display = c.otlp_endpoint.clone().or(env_endpoint)?;
        let exporter_on =
            |var: &str| env(var).is_none_or(|v| !v.trim().eq_ignore_ascii_case("none"));
        let traces = c
            .traces
            .unwrap_or_else(|| exporter_on("OTEL_TRACES_EXPORTER"));
        let metrics = c
            .metrics
            .unwrap_or_else(|| exporter_on("OTEL_METRICS_EXPORTER"));
        if !traces && !metrics {
            return None;
        }
        let env_sampler = env("OTEL_TRACES_SAMPLER").map(|s| s.trim().to_ascii_lowercase());
        let (ratio, sampler_from_env) = match (c.sample_ratio, env_sampler.as_deref()) {
            (Some(r), _) => (r, false),
            (None, Some(s)) => (
                ratio_of_env_sampler(s, env("OTEL_TRACES_SAMPLER_ARG")),
                true,
            ),
            (None, None) => (1.0, false),
        };
        Some(Settings {
            endpoint: c.otlp_endpoint.clone(),
            endpoint_display,
            service_name: c.service_name.clone(),
            traces,
            metrics,
            ratio: ratio.clamp(0.0, 1.0),
            sampler_from_env,
            metrics_interval: c.metrics_interval,
        })
    }
}

/// The keep ratio an `OTEL_TRACES_SAMPLER` value implies (traced messages use it too).
fn ratio_of_env_sampler(sampler: &str, arg: Option<String>) -> f64 {
    match sampler {
        "always_off" | "parentbased_always_off" => 0.0,
        "traceidratio" | "parentbased_traceidratio" => arg
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0),
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(c: &TelemetryConfig, vars: &[(&str, &str)]) -> Option<Settings> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(c, |k| m.get(k).cloned())
    }

    #[test]
    fn off_without_endpoint() {
        assert_eq!(resolve(&TelemetryConfig::default(), &[]), None);
        let c = TelemetryConfig {
            traces: Some(true),
            ..Default::default()
        };
        assert_eq!(resolve(&c, &[("OTEL_SERVICE_NAME", "x")]), None);
    }

    #[test]
    fn conf_endpoint_wins_and_env_fills_in() {
        let c = TelemetryConfig {
            otlp_endpoint: Some("http://c:4317".into()),
            ..Default::default()
        };
        let s = resolve(
            &c,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://e:4317"),
                ("OTEL_METRICS_EXPORTER", "none"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ],
        )
        .unwrap();
        assert_eq!(s.endpoint.as_deref(), Some("http://c:4317"));
        assert!(s.traces && !s.metrics);
        assert_eq!(s.ratio, 0.25);
        assert!(s.sampler_from_env);
    }

    #[test]
    fn env_only_and_disabled() {
        let c = TelemetryConfig::default();
        let s = resolve(
            &c,
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://e:4317")],
        )
        .unwrap();
        assert_eq!(s.endpoint, None, "the exporter reads the variable itself");
        assert_eq!(s.endpoint_display, "http://e:4317");
        assert_eq!(s.ratio, 1.0);
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://e:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert_eq!(resolve(&c, &vars), None);
        let c = TelemetryConfig {
            otlp_endpoint: Some("http://c:4317".into()),
            traces: Some(false),
            metrics: Some(false),
            ..Default::default()
        };
        assert_eq!(resolve(&c, &[]), None);
    }

    #[test]
    fn conf_ratio_beats_env_sampler() {
        let c = TelemetryConfig {
            otlp_endpoint: Some("http://c:4317".into()),
            sample_ratio: Some(0.5),
            ..Default::default()
        };
        let s = resolve(&c, &[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
        assert_eq!(s.ratio, 0.5);
        assert!(!s.sampler_from_env);
        let c = TelemetryConfig {
            sample_ratio: None,
            ..c
        };
        let s = resolve(&c, &[("OTEL_TRACES_SAMPLER", "always_off")]).unwrap();
        assert_eq!(s.ratio, 0.0);
    }
}
