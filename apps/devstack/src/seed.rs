//! The demo data and the code that writes it: accounts (staff, a paying customer, and the
//! service users web and the bot sign in as), routes and a day or two of signals. Every write is
//! create-if-absent, so later starts change nothing.

use anyhow::Context as _;
use g3_access::{Access, Cause};
use g3_appwrite::{Client, Upserted};
use g3_core::{Email, plans::Plan};
use g3_store::{
    Collection,
    models::{Route, Side, Signal, SignalStatus},
    schema::TEAM_STAFF,
};

use crate::demo_collector::DEMO_GUILD;

/// A demo account devstack creates and prints.
#[derive(Clone, Debug)]
pub struct DemoAccount {
    pub id: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub name: &'static str,
    pub labels: &'static [&'static str],
    /// Staff accounts join team `staff`; others get this plan like a buyer would.
    pub staff: bool,
    pub plan: Option<&'static str>,
}

/// The staff member (admin) and the paying customer every devstack has.
pub const DEMO_ACCOUNTS: &[DemoAccount] = &[
    DemoAccount {
        id: "demo-staff",
        email: "staff@g3.local",
        password: "staff-demo-password",
        name: "Demo Staff",
        labels: &["admin"],
        staff: true,
        plan: None,
    },
    DemoAccount {
        id: "demo-customer",
        email: "customer@g3.local",
        password: "customer-demo-password",
        name: "Demo Customer",
        labels: &[],
        staff: false,
        plan: Some("vip"),
    },
];

/// The `staff` service user web signs in as for its Realtime subscription (Realtime takes no
/// API keys). Not a person: printed apart from the demo accounts.
pub const WEB_SERVICE: DemoAccount = DemoAccount {
    id: "web-service",
    email: "web-service@g3.local",
    password: "devstack-web-service-password",
    name: "Web live feed",
    labels: &["service"],
    staff: true,
    plan: None,
};

/// The `staff` service user the bot signs in as for its Realtime subscription.
pub const BOT_SERVICE: DemoAccount = DemoAccount {
    id: "bot-service",
    email: "bot-service@g3.local",
    password: "devstack-bot-service-password",
    name: "Mirroring bot",
    labels: &["service"],
    staff: true,
    plan: None,
};

/// The `staff` service user the tracker signs in as for its Realtime subscription.
pub const TRACKER_SERVICE: DemoAccount = DemoAccount {
    id: "tracker-service",
    email: "tracker-service@g3.local",
    password: "devstack-tracker-service-password",
    name: "Outcome tracker",
    labels: &["service"],
    staff: true,
    plan: None,
};

/// Creates the demo accounts if absent: staff join team `staff`, customers get their plan the
/// way an admin grant gives it (subscription, `paid` team, audit). Idempotent.
pub(crate) async fn accounts(
    client: &Client,
    access: &Access,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let users = client.users();
    for account in DEMO_ACCOUNTS
        .iter()
        .chain([&WEB_SERVICE, &BOT_SERVICE, &TRACKER_SERVICE])
    {
        let created = match users
            .create(
                account.id,
                account.email,
                Some(account.password),
                Some(account.name),
            )
            .await
        {
            Ok(_) => true,
            Err(e) if e.is_conflict() => false,
            Err(e) => {
                return Err(e).with_context(|| format!("creating demo user {}", account.email));
            }
        };
        if account.labels.contains(&"service") {
            // Every start, so a data directory from before service users joined `paid` too
            // gets the membership web's access cache needs.
            g3_access::enlist_service_user(client, account.id).await?;
        }
        if !created {
            continue;
        }
        users.update_email_verification(account.id, true).await?;
        if !account.labels.is_empty() {
            users.update_labels(account.id, account.labels).await?;
        }
        if account.staff
            && !account.labels.contains(&"service")
            && let Upserted::Created(_) = client
                .teams()
                .add_member_if_absent(TEAM_STAFF, account.id, &["admin"])
                .await?
        {
            progress(&format!("seed: {} joined team {TEAM_STAFF}", account.email));
        }
        if let Some(plan) = account.plan {
            let cause = Cause::Admin {
                actor: "devstack".into(),
                reason: "demo customer".into(),
            };
            access
                .grant(
                    &Email::parse(account.email)?,
                    &Plan::parse(plan)?,
                    None,
                    &cause,
                )
                .await?;
            progress(&format!("seed: {} has plan {plan}", account.email));
        }
        progress(&format!("seed: created {}", account.email));
    }
    Ok(())
}

/// The demo routes: key, display name, source channel, customer channel (in the sandbox).
pub(crate) const DEMO_ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "vip-calls",
        "VIP Calls",
        "1100000000000000001",
        "1300000000000000001",
    ),
    (
        "scalps",
        "Scalps",
        "1100000000000000002",
        "1300000000000000002",
    ),
];

/// A parsed trade: pair (as the parser writes it, `BTC/USDT`), side, entries, targets, stop,
/// leverage.
type Trade = (&'static str, Side, &'static [f64], &'static [f64], f64, f64);

/// One demo signal: id (a message snowflake), route, hours ago, author, text, parsed trade.
struct DemoSignal {
    id: &'static str,
    route: &'static str,
    hours_ago: i64,
    author: &'static str,
    content: &'static str,
    trade: Option<Trade>,
    edited: bool,
    deleted: bool,
}

const DEMO_SIGNALS: &[DemoSignal] = &[
    DemoSignal {
        id: "1300000000000000010",
        route: "vip-calls",
        hours_ago: 1,
        author: "Nova",
        content: "**BTCUSDT LONG**\nEntry 64200 - 63800\nTP 65000 / 66500 / 68000\nSL 62900\nLev 10x",
        trade: Some((
            "BTC/USDT",
            Side::Long,
            &[64200.0, 63800.0],
            &[65000.0, 66500.0, 68000.0],
            62900.0,
            10.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000009",
        route: "scalps",
        hours_ago: 3,
        author: "Kite",
        content: "ETHUSDT short scalp\nEntry 3180\nTargets 3140, 3110\nStop 3215\n20x",
        trade: Some((
            "ETH/USDT",
            Side::Short,
            &[3180.0],
            &[3140.0, 3110.0],
            3215.0,
            20.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000008",
        route: "vip-calls",
        hours_ago: 6,
        author: "Nova",
        content: "SOLUSDT LONG\nEntry 142.5 - 139\nTP 148 / 155\nSL 134 (moved to entry after TP1)\nLev 5x",
        trade: Some((
            "SOL/USDT",
            Side::Long,
            &[142.5, 139.0],
            &[148.0, 155.0],
            134.0,
            5.0,
        )),
        edited: true,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000007",
        route: "vip-calls",
        hours_ago: 9,
        author: "Atlas",
        content: "Market update: funding is flipping negative on majors, expect chop until the US open. No new positions from me today, manage the open ones.",
        trade: None,
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000006",
        route: "scalps",
        hours_ago: 14,
        author: "Kite",
        content: "DOGEUSDT long\nEntry 0.1625\nTP 0.168 / 0.172\nSL 0.158\n15x",
        trade: Some((
            "DOGE/USDT",
            Side::Long,
            &[0.1625],
            &[0.168, 0.172],
            0.158,
            15.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000005",
        route: "vip-calls",
        hours_ago: 20,
        author: "Atlas",
        content: "LINKUSDT SHORT\nEntry 18.40 - 18.75\nTP 17.60 / 16.90\nSL 19.30\nLev 8x",
        trade: Some((
            "LINK/USDT",
            Side::Short,
            &[18.4, 18.75],
            &[17.6, 16.9],
            19.3,
            8.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000004",
        route: "scalps",
        hours_ago: 26,
        author: "Kite",
        content: "XRPUSDT long, quick one\nEntry 0.615\nTP 0.628\nSL 0.604\n25x",
        trade: Some(("XRP/USDT", Side::Long, &[0.615], &[0.628], 0.604, 25.0)),
        edited: false,
        deleted: true,
    },
    DemoSignal {
        id: "1300000000000000003",
        route: "vip-calls",
        hours_ago: 31,
        author: "Nova",
        content: "AVAXUSDT LONG\nEntry 36.2\nTP 38 / 40 / 43\nSL 34.6\nLev 6x",
        trade: Some((
            "AVAX/USDT",
            Side::Long,
            &[36.2],
            &[38.0, 40.0, 43.0],
            34.6,
            6.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000002",
        route: "vip-calls",
        hours_ago: 40,
        author: "Atlas",
        content: "BNBUSDT SHORT\nEntry 598 - 604\nTP 585 / 570\nSL 612\nLev 10x",
        trade: Some((
            "BNB/USDT",
            Side::Short,
            &[598.0, 604.0],
            &[585.0, 570.0],
            612.0,
            10.0,
        )),
        edited: false,
        deleted: false,
    },
    DemoSignal {
        id: "1300000000000000001",
        route: "scalps",
        hours_ago: 47,
        author: "Kite",
        content: "ARBUSDT long\nEntry 1.08\nTP 1.12 / 1.15\nSL 1.05\n10x\n_Small size, news at 14:00 UTC._",
        trade: Some(("ARB/USDT", Side::Long, &[1.08], &[1.12, 1.15], 1.05, 10.0)),
        edited: false,
        deleted: false,
    },
];

/// Each seeded trade's pair and the levels it starts from (entries and stop).
#[cfg(test)]
pub(crate) fn demo_signal_levels() -> Vec<(&'static str, Vec<f64>)> {
    DEMO_SIGNALS
        .iter()
        .filter_map(|s| s.trade)
        .map(|(pair, _, entries, _, stop, _)| {
            let mut levels = entries.to_vec();
            levels.push(stop);
            (pair, levels)
        })
        .collect()
}

/// Seeds the demo routes and signals if absent, so the demo customer sees a working feed.
/// Times are relative to the first start; later starts change nothing.
pub(crate) async fn routes_and_signals(
    client: &Client,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    let routes = Collection::<Route>::new(client);
    for (key, name, channel, customer) in DEMO_ROUTES {
        let route = Route {
            source_channel_id: (*channel).to_owned(),
            source_guild_id: Some(DEMO_GUILD.to_owned()),
            name: (*name).to_owned(),
            customer_channel_ids: vec![(*customer).to_owned()],
            enabled: Some(true),
        };
        if let Upserted::Created(_) = routes
            .create_if_absent(key, &route, None)
            .await
            .with_context(|| format!("seeding route {key}"))?
        {
            progress(&format!("seed: route {key}"));
        } else {
            // Routes seeded before the sandbox existed name no customer channel: give them one.
            let existing = routes.get(key).await?;
            if existing.data.customer_channel_ids.is_empty() {
                routes.upsert(key, &route, None).await?;
                progress(&format!(
                    "seed: route {key} mirrors into channel {customer}"
                ));
            }
        }
    }
    let signals = Collection::<Signal>::new(client);
    let now = time::OffsetDateTime::now_utc();
    let mut created = 0;
    for s in DEMO_SIGNALS {
        if let Upserted::Created(_) = signals
            .create_if_absent(s.id, &s.signal(now), None)
            .await
            .with_context(|| format!("seeding signal {}", s.id))?
        {
            created += 1;
        }
    }
    if created > 0 {
        progress(&format!("seed: {created} demo signals"));
    }
    Ok(())
}

impl DemoSignal {
    /// The document as ingest would have written it, posted `hours_ago` before `now`.
    fn signal(&self, now: time::OffsetDateTime) -> Signal {
        let posted = now - time::Duration::hours(self.hours_ago);
        let channel = DEMO_ROUTES
            .iter()
            .find(|(k, _, _, _)| *k == self.route)
            .map_or("0", |(_, _, c, _)| *c);
        let (pair, side, entries, targets, stop, leverage) = match self.trade {
            Some((pair, side, entries, targets, stop, leverage)) => (
                Some(pair.to_owned()),
                Some(side),
                entries.to_vec(),
                targets.to_vec(),
                Some(stop),
                Some(leverage),
            ),
            None => (None, None, Vec::new(), Vec::new(), None, None),
        };
        Signal {
            author_id: Some("1200000000000000001".to_owned()),
            author_name: Some(self.author.to_owned()),
            content: Some(self.content.to_owned()),
            pair,
            side,
            entries,
            targets,
            stop,
            leverage,
            revision: if self.edited { 2 } else { 1 },
            status: if self.deleted {
                SignalStatus::Deleted
            } else {
                SignalStatus::Live
            },
            edited_at: self.edited.then(|| posted + time::Duration::minutes(25)),
            deleted_at: self.deleted.then(|| posted + time::Duration::hours(2)),
            ..Signal::live((DEMO_GUILD, channel, self.id), self.route, posted)
        }
    }
}
