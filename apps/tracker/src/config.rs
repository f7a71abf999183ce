//! The tracker's command line and environment (`tracker --help` lists every setting with its
//! variable), and [`Args::settings`], which checks them all at once and names every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use g3_appwrite::{ApiKey, Config};
use g3_market::{Backoff, Endpoints, Venue};
use g3_outcomes::Rules;
use g3_service::config::{Checks, ConfigError, given};

use crate::{Clock, LeaseSettings, MetricsAccess, Secret, Settings, Stats};

/// Follows signals against exchange prices and keeps each signal's outcome. Run any number:
/// one leads, the others stand by.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "tracker", version)]
pub struct Args {
    /// Where `/healthz` and `/metrics` answer [default: 127.0.0.1:8096].
    #[arg(long, env = "TRACKER_BIND")]
    pub tracker_bind: Option<String>,
    /// Bearer token for `/metrics`; without it `/metrics` is 404.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    #[arg(long, env = "APPWRITE_ENDPOINT")]
    pub appwrite_endpoint: Option<String>,
    #[arg(long, env = "APPWRITE_PROJECT_ID")]
    pub appwrite_project_id: Option<String>,
    #[arg(long, env = "APPWRITE_API_KEY", hide_env_values = true)]
    pub appwrite_api_key: Option<String>,
    /// The `staff` service user the tracker signs in as for Realtime.
    #[arg(long, env = "TRACKER_STAFF_EMAIL")]
    pub tracker_staff_email: Option<String>,
    #[arg(long, env = "TRACKER_STAFF_PASSWORD", hide_env_values = true)]
    pub tracker_staff_password: Option<String>,
    /// Venues in order of preference: the first that lists a pair follows it
    /// [default: binance-futures,binance-spot]. Also binance-spot, bybit-spot, bybit-linear.
    #[arg(long, env = "TRACKER_VENUES")]
    pub tracker_venues: Option<String>,
    /// How long a signal is followed after posting, in hours [default: 168].
    #[arg(long, env = "TRACKER_TIME_LIMIT_HOURS")]
    pub tracker_time_limit_hours: Option<String>,
    /// Milliseconds a second's bar waits for late trades before it is judged [default: 1000].
    #[arg(long, env = "TRACKER_BAR_GRACE_MS")]
    pub tracker_bar_grace_ms: Option<String>,
    /// Seconds between rewrites of an open outcome whose events did not change [default: 60].
    #[arg(long, env = "TRACKER_PROGRESS_SECS")]
    pub tracker_progress_secs: Option<String>,
    /// Trackers sharing a lease name elect one leader [default: tracker].
    #[arg(long, env = "TRACKER_LEASE_NAME")]
    pub tracker_lease_name: Option<String>,
    /// This process in the lease documents (default: host name, pid and a random suffix).
    #[arg(long, env = "TRACKER_INSTANCE_ID")]
    pub tracker_instance_id: Option<String>,
    /// Binance spot's combined-stream WebSocket URL, to reach another exchange than production
    /// (a test double, a proxy); set with its REST URL [default:
    /// wss://data-stream.binance.vision/stream].
    #[arg(long, env = "TRACKER_BINANCE_SPOT_WS_URL")]
    pub tracker_binance_spot_ws_url: Option<String>,
    /// Binance spot's REST base [default: https://data-api.binance.vision].
    #[arg(long, env = "TRACKER_BINANCE_SPOT_REST_URL")]
    pub tracker_binance_spot_rest_url: Option<String>,
    /// Binance USDⓈ-M futures' WebSocket URL; set with its REST URL [default:
    /// wss://fstream.binance.com/market/stream].
    #[arg(long, env = "TRACKER_BINANCE_FUTURES_WS_URL")]
    pub tracker_binance_futures_ws_url: Option<String>,
    /// Binance USDⓈ-M futures' REST base [default: https://fapi.binance.com].
    #[arg(long, env = "TRACKER_BINANCE_FUTURES_REST_URL")]
    pub tracker_binance_futures_rest_url: Option<String>,
    /// Bybit spot's public WebSocket URL; set with its REST URL [default:
    /// wss://stream.bybit.com/v5/public/spot].
    #[arg(long, env = "TRACKER_BYBIT_SPOT_WS_URL")]
    pub tracker_bybit_spot_ws_url: Option<String>,
    /// Bybit's REST base for spot [default: https://api.bybit.com].
    #[arg(long, env = "TRACKER_BYBIT_SPOT_REST_URL")]
    pub tracker_bybit_spot_rest_url: Option<String>,
    /// Bybit linear's public WebSocket URL; set with its REST URL [default:
    /// wss://stream.bybit.com/v5/public/linear].
    #[arg(long, env = "TRACKER_BYBIT_LINEAR_WS_URL")]
    pub tracker_bybit_linear_ws_url: Option<String>,
    /// Bybit's REST base for linear [default: https://api.bybit.com].
    #[arg(long, env = "TRACKER_BYBIT_LINEAR_REST_URL")]
    pub tracker_bybit_linear_rest_url: Option<String>,
    #[arg(long, env = "HOSTNAME", hide = true)]
    pub hostname: Option<String>,
}

/// `binance-futures` or `binance_futures` → the venue.
pub fn parse_venues(text: &str) -> Result<Vec<Venue>, String> {
    let mut venues = Vec::new();
    for part in text
        .split([',', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let venue = Venue::parse(&part.replace('-', "_")).ok_or_else(|| {
            format!(
                "{part:?} is not one of binance-futures, binance-spot, bybit-linear, bybit-spot"
            )
        })?;
        if !venues.contains(&venue) {
            venues.push(venue);
        }
    }
    if venues.is_empty() {
        return Err("names no venue".into());
    }
    Ok(venues)
}

fn positive(text: &str, what: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a positive number of {what}"))
}

/// The variables naming a venue's WebSocket URL and REST base:
/// `TRACKER_BINANCE_SPOT_WS_URL` and `TRACKER_BINANCE_SPOT_REST_URL`, and so on.
pub fn endpoint_vars(venue: Venue) -> (String, String) {
    let name = venue.as_str().to_ascii_uppercase();
    (
        format!("TRACKER_{name}_WS_URL"),
        format!("TRACKER_{name}_REST_URL"),
    )
}

/// Which of a venue's two endpoints a setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ws,
    Rest,
}

/// `text` as `venue`'s WebSocket URL or REST base (the other one stays production's): a
/// ws(s) or http(s) URL with a host and no query or fragment.
fn endpoint(venue: Venue, side: Side, text: &str) -> Result<Endpoints, String> {
    let mut endpoints = Endpoints::production(venue);
    let (url, schemes) = match side {
        Side::Ws => (&mut endpoints.ws, ["ws", "wss"]),
        Side::Rest => (&mut endpoints.rest, ["http", "https"]),
    };
    *url = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !schemes.contains(&url.scheme()) || url.host().is_none() {
        return Err(format!("{text:?} is not a {} URL", schemes.join(" or ")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    Ok(endpoints)
}

/// A venue's endpoints from its two settings: both (checked), or neither (`None`: production).
/// One alone is refused, so a stream and its backfill never come from different exchanges.
fn venue_endpoints(
    c: &mut Checks,
    venue: Venue,
    ws: Option<&str>,
    rest: Option<&str>,
) -> Option<Endpoints> {
    let (ws_var, rest_var) = endpoint_vars(venue);
    match (given(ws), given(rest)) {
        (None, None) => None,
        (Some(_), None) => {
            c.fail(
                &rest_var,
                format!("is not set, but {ws_var} is: set both or neither"),
            );
            None
        }
        (None, Some(_)) => {
            c.fail(
                &ws_var,
                format!("is not set, but {rest_var} is: set both or neither"),
            );
            None
        }
        (Some(ws), Some(rest)) => {
            let ws = c.check(&ws_var, endpoint(venue, Side::Ws, &ws));
            let rest = c.check(&rest_var, endpoint(venue, Side::Rest, &rest));
            Some(Endpoints {
                ws: ws?.ws,
                rest: rest?.rest,
            })
        }
    }
}

impl Args {
    /// The endpoint settings of each venue: (venue, WebSocket URL, REST base).
    fn endpoint_settings(&self) -> [(Venue, Option<&str>, Option<&str>); 4] {
        [
            (
                Venue::BinanceSpot,
                self.tracker_binance_spot_ws_url.as_deref(),
                self.tracker_binance_spot_rest_url.as_deref(),
            ),
            (
                Venue::BinanceFutures,
                self.tracker_binance_futures_ws_url.as_deref(),
                self.tracker_binance_futures_rest_url.as_deref(),
            ),
            (
                Venue::BybitSpot,
                self.tracker_bybit_spot_ws_url.as_deref(),
                self.tracker_bybit_spot_rest_url.as_deref(),
            ),
            (
                Venue::BybitLinear,
                self.tracker_bybit_linear_ws_url.as_deref(),
                self.tracker_bybit_linear_rest_url.as_deref(),
            ),
        ]
    }
}

impl Args {
    /// The settings and the listener address, or every problem found.
    pub fn settings(&self) -> Result<(Settings, SocketAddr), ConfigError> {
        let mut c = Checks::new();
        let endpoint = c.required("APPWRITE_ENDPOINT", self.appwrite_endpoint.as_deref());
        let project = c.required("APPWRITE_PROJECT_ID", self.appwrite_project_id.as_deref());
        let key = c.required("APPWRITE_API_KEY", self.appwrite_api_key.as_deref());
        let email = c.required("TRACKER_STAFF_EMAIL", self.tracker_staff_email.as_deref());
        let password = c.required(
            "TRACKER_STAFF_PASSWORD",
            self.tracker_staff_password.as_deref(),
        );
        let bind = c.check(
            "TRACKER_BIND",
            given(self.tracker_bind.as_deref())
                .unwrap_or_else(|| "127.0.0.1:8096".into())
                .parse::<SocketAddr>()
                .map_err(|e| format!("not an address like 127.0.0.1:8096: {e}")),
        );
        let venues = c.check(
            "TRACKER_VENUES",
            parse_venues(
                &given(self.tracker_venues.as_deref())
                    .unwrap_or_else(|| "binance-futures,binance-spot".into()),
            ),
        );
        let hours = match given(self.tracker_time_limit_hours.as_deref()) {
            Some(h) => c.check("TRACKER_TIME_LIMIT_HOURS", positive(&h, "hours")),
            None => Some(168),
        };
        let grace = match given(self.tracker_bar_grace_ms.as_deref()) {
            Some(ms) => c.check("TRACKER_BAR_GRACE_MS", positive(&ms, "milliseconds")),
            None => Some(1_000),
        };
        let progress = match given(self.tracker_progress_secs.as_deref()) {
            Some(s) => c.check("TRACKER_PROGRESS_SECS", positive(&s, "seconds")),
            None => Some(60),
        };
        let name = given(self.tracker_lease_name.as_deref()).unwrap_or_else(|| "tracker".into());
        if name.is_empty()
            || name.len() > 24
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'))
        {
            c.fail(
                "TRACKER_LEASE_NAME",
                format!("{name:?} must be 1 to 24 of a-z, A-Z, 0-9, - and _"),
            );
        }
        let mut endpoints = BTreeMap::new();
        for (venue, ws, rest) in self.endpoint_settings() {
            if let Some(e) = venue_endpoints(&mut c, venue, ws, rest) {
                endpoints.insert(venue, e);
            }
        }
        let holder = given(self.tracker_instance_id.as_deref())
            .unwrap_or_else(|| crate::default_holder(self.hostname.as_deref()));
        if holder.len() > 128 {
            c.fail("TRACKER_INSTANCE_ID", "must be at most 128 characters");
        }
        c.finish()?;
        let (
            Some(endpoint),
            Some(project),
            Some(key),
            Some(email),
            Some(password),
            Some(bind),
            Some(venues),
            Some(hours),
            Some(grace),
            Some(progress),
        ) = (
            endpoint, project, key, email, password, bind, venues, hours, grace, progress,
        )
        else {
            return Err(ConfigError::one("settings", "incomplete"));
        };
        let mut appwrite = Config::new(endpoint, project);
        appwrite.api_key = Some(ApiKey::new(key));
        let settings = Settings {
            appwrite,
            staff_email: email,
            staff_password: Secret::new(password),
            venues,
            endpoints,
            feed_backoff: Backoff {
                first: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            listings_ttl: Duration::from_secs(3600),
            rules: Rules {
                time_limit: time::Duration::hours(hours as i64),
            },
            bar_grace: time::Duration::milliseconds(grace as i64),
            tick_every: Duration::from_millis(250),
            progress_every: Duration::from_secs(progress),
            lease: LeaseSettings {
                name,
                holder,
                timing: g3_store::lease::Timing::default(),
            },
            metrics: MetricsAccess::from_token(self.metrics_token.as_deref()),
            clock: Clock::system(),
            stats: Arc::new(Stats::default()),
        };
        Ok((settings, bind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_or_bad_setting_is_named_at_once() {
        let args = Args {
            appwrite_endpoint: Some("http://127.0.0.1:1/v1".into()),
            tracker_venues: Some("binance-futures,kraken".into()),
            tracker_time_limit_hours: Some("0".into()),
            ..Args::default()
        };
        let Err(err) = args.settings() else {
            panic!("settings accepted");
        };
        let err = err.to_string();
        for name in [
            "APPWRITE_PROJECT_ID",
            "APPWRITE_API_KEY",
            "TRACKER_STAFF_EMAIL",
            "TRACKER_STAFF_PASSWORD",
            "TRACKER_VENUES",
            "TRACKER_TIME_LIMIT_HOURS",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
    }

    fn minimal() -> Args {
        Args {
            appwrite_endpoint: Some("http://127.0.0.1:1/v1".into()),
            appwrite_project_id: Some("p".into()),
            appwrite_api_key: Some("k".into()),
            tracker_staff_email: Some("t@x.y".into()),
            tracker_staff_password: Some("pw".into()),
            ..Args::default()
        }
    }

    #[test]
    fn endpoints_are_production_unless_both_urls_of_a_venue_are_set() {
        let (settings, _) = minimal().settings().unwrap();
        assert!(settings.endpoints.is_empty());
        for venue in Venue::ALL {
            assert_eq!(settings.endpoints(venue), Endpoints::production(venue));
        }
        let args = Args {
            tracker_binance_spot_ws_url: Some(" ws://127.0.0.1:9000/binance-spot/stream ".into()),
            tracker_binance_spot_rest_url: Some("http://127.0.0.1:9000/binance-spot".into()),
            tracker_bybit_linear_ws_url: Some(
                "wss://stream-testnet.bybit.com/v5/public/linear".into(),
            ),
            tracker_bybit_linear_rest_url: Some("https://api-testnet.bybit.com".into()),
            ..minimal()
        };
        let (settings, _) = args.settings().unwrap();
        let spot = settings.endpoints(Venue::BinanceSpot);
        assert_eq!(spot.ws.as_str(), "ws://127.0.0.1:9000/binance-spot/stream");
        assert_eq!(spot.rest.as_str(), "http://127.0.0.1:9000/binance-spot");
        let linear = settings.endpoints(Venue::BybitLinear);
        assert_eq!(linear.ws.host_str(), Some("stream-testnet.bybit.com"));
        assert_eq!(linear.rest.as_str(), "https://api-testnet.bybit.com/");
        assert_eq!(
            settings.endpoints(Venue::BinanceFutures),
            Endpoints::production(Venue::BinanceFutures)
        );
        assert_eq!(settings.endpoints.len(), 2);
    }

    #[test]
    fn a_bad_or_lone_endpoint_url_is_named() {
        let args = Args {
            // Schemes swapped.
            tracker_binance_spot_ws_url: Some("http://127.0.0.1:9000/stream".into()),
            tracker_binance_spot_rest_url: Some("ws://127.0.0.1:9000".into()),
            // Only one of the pair.
            tracker_binance_futures_ws_url: Some("wss://fstream.example/market/stream".into()),
            // Not a URL, and a query.
            tracker_bybit_spot_ws_url: Some("stream.bybit.com".into()),
            tracker_bybit_spot_rest_url: Some("https://api.bybit.com?x=1".into()),
            // Only the other one of the pair.
            tracker_bybit_linear_rest_url: Some("https://api.bybit.com".into()),
            ..minimal()
        };
        let Err(err) = args.settings() else {
            panic!("settings accepted");
        };
        let problems: BTreeMap<&str, &str> = err
            .problems()
            .iter()
            .map(|(name, problem)| (name.as_str(), problem.as_str()))
            .collect();
        let expect = [
            ("TRACKER_BINANCE_SPOT_WS_URL", "is not a ws or wss URL"),
            (
                "TRACKER_BINANCE_SPOT_REST_URL",
                "is not a http or https URL",
            ),
            (
                "TRACKER_BINANCE_FUTURES_REST_URL",
                "is not set, but TRACKER_BINANCE_FUTURES_WS_URL is",
            ),
            ("TRACKER_BYBIT_SPOT_WS_URL", "is not a URL"),
            ("TRACKER_BYBIT_SPOT_REST_URL", "must not have a query"),
            (
                "TRACKER_BYBIT_LINEAR_WS_URL",
                "is not set, but TRACKER_BYBIT_LINEAR_REST_URL is",
            ),
        ];
        for (name, problem) in expect {
            let found = problems.get(name).copied().unwrap_or("nothing");
            assert!(found.contains(problem), "{name}: {found} ({err})");
        }
        assert_eq!(problems.len(), expect.len(), "{err}");
    }

    #[test]
    fn every_endpoint_variable_is_a_documented_flag() {
        use clap::CommandFactory as _;
        let command = Args::command();
        let envs: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        for venue in Venue::ALL {
            let (ws, rest) = endpoint_vars(venue);
            assert!(envs.contains(&ws) && envs.contains(&rest), "{ws} {rest}");
            let example = include_str!("../../../.env.example");
            assert!(
                example.contains(&format!("# {ws}=")) && example.contains(&format!("# {rest}=")),
                "{ws} and {rest} are in .env.example"
            );
        }
    }

    #[test]
    fn defaults_follow_binance_futures_then_spot_for_seven_days() {
        let args = Args {
            appwrite_endpoint: Some("http://127.0.0.1:1/v1".into()),
            appwrite_project_id: Some("p".into()),
            appwrite_api_key: Some("k".into()),
            tracker_staff_email: Some("t@x.y".into()),
            tracker_staff_password: Some("pw".into()),
            ..Args::default()
        };
        let (settings, bind) = args.settings().unwrap();
        assert_eq!(settings.venues, [Venue::BinanceFutures, Venue::BinanceSpot]);
        assert_eq!(settings.rules.time_limit, time::Duration::days(7));
        assert_eq!(bind, "127.0.0.1:8096".parse().unwrap());
        assert_eq!(
            parse_venues("bybit_linear bybit-spot").unwrap(),
            [Venue::BybitLinear, Venue::BybitSpot]
        );
    }
}
