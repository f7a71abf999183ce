//! Several replicas on one backend: two `Access` instances (each its own client, as two webhook
//! processes would have) apply concurrent deliveries for one customer and end in the state a
//! single process applying them in order reaches; a lock whose holder died is broken after its
//! TTL. Also counts the Appwrite calls one delivery costs.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use g3_access::{Access, LockError, LockTiming, Locks};
use g3_appwrite::{Client, Query};
use g3_core::{plans::PlanCatalog, sellapp::Event};
use g3_store::{
    Collection,
    models::{AuditEntry, Subscription, WebhookEvent},
    schema::TEAM_PAID,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

fn plans() -> PlanCatalog {
    PlanCatalog::parse("3301:9001=vip,3301=basic,4400=pro").unwrap()
}

fn order(event: &str, order_id: u64, email: &str, variant: u64) -> Event {
    let body = json!({
        "event": event, "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": 3301, "product_variant_id": variant }] }
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

fn subscription_event(event: &str, sub_id: u64, email: &str) -> Event {
    let end = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    let body = json!({
        "event": event, "store": 4821,
        "data": { "id": sub_id, "customer": { "email": email }, "product_id": 4400,
                  "current_period_end": g3_appwrite::format_datetime(end) }
    });
    Event::parse(body.to_string().as_bytes()).unwrap()
}

/// A TCP proxy in front of the emulator that counts HTTP requests (request lines `METHOD /v1/`).
struct CountingProxy {
    endpoint: String,
    requests: Arc<AtomicU64>,
}

impl CountingProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        // A request line split across reads is still counted once.
                        let mut tail: Vec<u8> = Vec::new();
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let mut window = std::mem::take(&mut tail);
                            let carried = window.len();
                            window.extend_from_slice(&buf[..n]);
                            counter
                                .fetch_add(count_request_lines(&window, carried), Ordering::SeqCst);
                            tail = window[window.len().saturating_sub(16)..].to_vec();
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self { endpoint, requests }
    }

    fn take(&self) -> u64 {
        self.requests.swap(0, Ordering::SeqCst)
    }
}

/// Request lines in `window` that end past `carried` (the bytes already scanned last time).
fn count_request_lines(window: &[u8], carried: usize) -> u64 {
    let mut n = 0;
    for method in ["GET ", "POST ", "PUT ", "PATCH ", "DELETE "] {
        let pattern = format!("{method}/v1/");
        let pattern = pattern.as_bytes();
        n += window
            .windows(pattern.len())
            .enumerate()
            .filter(|(i, w)| *w == pattern && i + pattern.len() > carried)
            .count() as u64;
    }
    n
}

fn client_for(backend: &testkit::backend::Backend, endpoint: Option<&str>) -> Client {
    let mut config = backend.client_config();
    if let Some(endpoint) = endpoint {
        config.endpoint = endpoint.to_owned();
    }
    Client::new(config).unwrap()
}

#[tokio::test]
async fn appwrite_calls_per_delivery() {
    let backend = testkit::backend::backend().await;
    let proxy = CountingProxy::start(backend.addr).await;
    let access = Access::new(client_for(&backend, Some(&proxy.endpoint)), plans());
    proxy.take();
    let email = "count@example.com";
    access
        .handle_delivery("count-1", &order("order.completed", 1, email, 9001))
        .await
        .unwrap();
    let new_grant = proxy.take();
    access
        .handle_delivery("count-1", &order("order.completed", 1, email, 9001))
        .await
        .unwrap();
    let duplicate = proxy.take();
    access
        .handle_delivery("count-2", &order("order.completed", 2, email, 9001))
        .await
        .unwrap();
    let second_grant = proxy.take();
    access
        .handle_delivery("count-3", &order("order.disputed", 2, email, 9001))
        .await
        .unwrap();
    let dispute = proxy.take();
    // Another replica, which never locked this customer: it has to find the lock's generation.
    let cold = Access::new(client_for(&backend, Some(&proxy.endpoint)), plans());
    proxy.take();
    cold.handle_delivery("count-4", &order("order.completed", 3, email, 9001))
        .await
        .unwrap();
    let cold_grant = proxy.take();
    // A new customer costs 6: the lock, `paid` membership by email (which creates the user),
    // the subscription, the audit entry, the delivery's record, the unlock. Their lock's first
    // generation says they have no subscriptions to read, and the record is written once, last
    // (10 before). The duplicate finds its history line and its final record (4). A grant to an
    // existing customer reads their subscriptions, user and membership (8, was 10); the dispute
    // reads the order's and the customer's subscriptions, the user and the membership it
    // deletes (10, was 11); another replica first looks up the lock's generation (10, was 11).
    assert_eq!(
        (new_grant, duplicate, second_grant, dispute, cold_grant),
        (6, 4, 8, 10, 10),
        "Appwrite calls: new grant, duplicate, grant to an existing customer, dispute, grant \
         to an existing customer on another replica: fewer is welcome (lower these numbers), \
         more needs a reason"
    );
}

/// A customer signed up, verified and linked to Discord, as `link_discord` leaves them.
async fn linked_customer(
    backend: &testkit::backend::Backend,
    access: &Access,
    email: &str,
    discord_user_id: &str,
) {
    let users = backend.client.users();
    let user = match users.find_by_email(email).await.unwrap() {
        Some(user) => user.id,
        None => {
            users
                .create(
                    g3_access::user_id_for(&g3_core::Email::parse(email).unwrap()).as_str(),
                    email,
                    None,
                    None,
                )
                .await
                .unwrap()
                .id
        }
    };
    users.update_email_verification(&user, true).await.unwrap();
    let linked = access
        .link_discord(&user, discord_user_id, None, "test")
        .await
        .unwrap();
    assert_eq!(linked, g3_access::LinkOutcome::Linked { previous: None });
}

/// With roles configured, a grant reads the customer's subscriptions and user once and hands
/// them to the role computation, which reads only the link and the recorded roles. A new
/// customer costs 7 calls: lock, user creation (with an id Appwrite picks, so no link and no
/// recorded roles can name them, and unverified, so none are due: nothing to read), subscription,
/// `paid` membership, audit, the delivery's record, unlock (12 before the first lock generation
/// stood for "no subscriptions" and the record was written once; 14 before the role computation
/// stopped re-reading the user and the subscriptions). A customer who signed up first pays one
/// more (the creation answers 409, then the lookup) and the role reads.
#[tokio::test]
async fn appwrite_calls_per_grant_with_roles() {
    let backend = testkit::backend::backend().await;
    let proxy = CountingProxy::start(backend.addr).await;
    let access = Access::new(client_for(&backend, Some(&proxy.endpoint)), plans())
        .with_roles(g3_core::plans::PlanRoles::parse("vip=111|222").unwrap());
    let email = "roles-count@example.com";
    proxy.take();
    access
        .handle_delivery("rc-1", &order("order.completed", 1, email, 9001))
        .await
        .unwrap();
    let new_customer = proxy.take();

    linked_customer(&backend, &access, email, "900100").await;
    proxy.take();
    access
        .handle_delivery("rc-2", &order("order.completed", 2, email, 9001))
        .await
        .unwrap();
    let roles_unchanged = proxy.take();

    // Signed up, verified and linked before paying: the grant writes both roles.
    let early = "early-count@example.com";
    linked_customer(&backend, &access, early, "900200").await;
    proxy.take();
    access
        .handle_delivery("rc-3", &order("order.completed", 3, early, 9001))
        .await
        .unwrap();
    let roles_written = proxy.take();
    assert_eq!(
        (new_customer, roles_unchanged, roles_written),
        (7, 10, 12),
        "Appwrite calls per grant with roles (new customer, roles unchanged, two roles \
         written): fewer is welcome (lower these numbers), more needs a reason"
    );
}

/// plan, status, order id, subscription id, period end, history length
type PlanRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    usize,
);

/// What a customer's state comes to, comparable between runs (no times but the period ends).
#[derive(Debug, PartialEq, Eq)]
struct CustomerState {
    paid: bool,
    plans: Vec<PlanRow>,
    /// (action, detail) of every audit entry about the customer, sorted
    audit: Vec<(String, String)>,
}

async fn customer_state(client: &Client, address: &str) -> CustomerState {
    let mut plans: Vec<_> = Collection::<Subscription>::new(client)
        .list(&[Query::equal("email", address), Query::limit(100)])
        .await
        .unwrap()
        .documents
        .into_iter()
        .map(|d| {
            let s = d.data;
            let history = s.history().len();
            (
                s.plan,
                format!("{:?}", s.status),
                s.sellapp_order_id,
                s.sellapp_subscription_id,
                s.period_end.map(g3_appwrite::format_datetime),
                history,
            )
        })
        .collect();
    plans.sort();
    let mut audit: Vec<_> = Collection::<AuditEntry>::new(client)
        .list(&[Query::equal("target", address), Query::limit(100)])
        .await
        .unwrap()
        .documents
        .into_iter()
        .map(|d| {
            // The cause in parentheses names the delivery: keep it, it tells orders apart.
            (d.data.action, d.data.detail.unwrap_or_default())
        })
        .collect();
    audit.sort();
    let paid = match client.users().find_by_email(address).await.unwrap() {
        Some(user) => client
            .teams()
            .find_membership(TEAM_PAID, &user.id)
            .await
            .unwrap()
            .is_some(),
        None => false,
    };
    CustomerState { paid, plans, audit }
}

/// Deliveries for one customer whose end state does not depend on their order: four orders of
/// one plan, an order and its dispute, a subscription and its cancellation.
fn deliveries(address: &str) -> Vec<(String, Event)> {
    let mut out = Vec::new();
    for n in 1..=4 {
        out.push((
            format!("vip-{n}"),
            order("order.completed", 100 + n, address, 9001),
        ));
    }
    out.push((
        "basic-paid".into(),
        order("order.completed", 200, address, 5),
    ));
    out.push((
        "basic-disputed".into(),
        order("order.disputed", 200, address, 5),
    ));
    out.push((
        "pro-created".into(),
        subscription_event("subscription.created", 77, address),
    ));
    out.push((
        "pro-cancelled".into(),
        subscription_event("subscription.cancelled", 77, address),
    ));
    out
}

#[tokio::test]
async fn two_replicas_converge_to_the_state_of_one() {
    let address = "busy@customer.io";
    let mut events = deliveries(address);
    // One period end for every subscription event, so both runs see the same one.
    let pro_end = events[6].1.period_end;
    events[7].1.period_end = pro_end;

    // One process, one delivery after the other.
    let reference = testkit::backend::backend().await;
    let one = Access::new(client_for(&reference, None), plans());
    for (id, event) in &events {
        one.handle_delivery(id, event).await.unwrap();
    }
    let expected = customer_state(&reference.client, address).await;
    assert!(expected.paid);
    assert_eq!(
        expected
            .audit
            .iter()
            .filter(|(a, d)| a == "grant" && d.starts_with("vip"))
            .count(),
        4,
        "one audit grant per vip order: {expected:#?}"
    );

    // Two processes, everything at once, every delivery sent to both.
    let backend = testkit::backend::backend().await;
    let replicas = [
        Arc::new(Access::new(client_for(&backend, None), plans())),
        Arc::new(Access::new(client_for(&backend, None), plans())),
    ];
    let start = Arc::new(tokio::sync::Barrier::new(events.len() * 2));
    let mut tasks = Vec::new();
    for (i, (id, event)) in events.iter().enumerate() {
        for copy in 0..2 {
            let access = Arc::clone(&replicas[(i + copy) % 2]);
            let (id, event, start) = (id.clone(), event.clone(), Arc::clone(&start));
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                access.handle_delivery(&id, &event).await
            }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let concurrent = customer_state(&backend.client, address).await;
    assert_eq!(concurrent.paid, expected.paid);
    // Which vip order is named last, and whether the disputed order's payment left a history
    // line, depend on the order of arrival; everything else must match.
    let comparable = |s: &CustomerState| {
        s.plans
            .iter()
            .map(|(plan, status, order, sub, end, history)| {
                let order = order.clone().filter(|_| plan != "vip");
                let history = (plan != "basic").then_some(*history);
                (
                    plan.clone(),
                    status.clone(),
                    order,
                    sub.clone(),
                    end.clone(),
                    history,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(comparable(&concurrent), comparable(&expected));
    let grants = |s: &CustomerState, prefix: &str| {
        s.audit
            .iter()
            .filter(|(a, d)| a == "grant" && d.starts_with(prefix))
            .count()
    };
    assert_eq!(grants(&concurrent, "vip"), 4, "{concurrent:#?}");
    assert_eq!(grants(&concurrent, "pro"), 1, "{concurrent:#?}");
    // The disputed order is granted once or never, depending on which came first.
    assert!(grants(&concurrent, "basic") <= 1, "{concurrent:#?}");
    for action in ["revoke", "cancel"] {
        assert_eq!(
            concurrent.audit.iter().filter(|(a, _)| a == action).count(),
            1,
            "{action}: {concurrent:#?}"
        );
    }
    // Every lock was let go.
    let locks = Collection::<g3_access::locks::LockRecord>::new(&backend.client)
        .list(&[Query::limit(100)])
        .await
        .unwrap();
    assert!(
        locks
            .documents
            .iter()
            .all(|d| d.data.released == Some(true)),
        "{:#?}",
        locks.documents
    );
}

fn quick(ttl_ms: u64, wait_ms: u64) -> LockTiming {
    LockTiming {
        ttl: Duration::from_millis(ttl_ms),
        wait: Duration::from_millis(wait_ms),
        poll: Duration::from_millis(10),
    }
}

#[tokio::test]
async fn a_lock_excludes_other_processes_and_is_let_go() {
    let backend = testkit::backend::backend().await;
    let timing = quick(20_000, 10_000);
    let a = Arc::new(Locks::new(client_for(&backend, None), timing));
    let b = Arc::new(Locks::new(client_for(&backend, None), timing));
    let inside = Arc::new(AtomicU64::new(0));
    let entered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..12 {
        let locks = Arc::clone(if i % 2 == 0 { &a } else { &b });
        let (inside, entered) = (Arc::clone(&inside), Arc::clone(&entered));
        tasks.push(tokio::spawn(async move {
            let guard = locks.acquire("customer:one@x.io").await.unwrap();
            assert_eq!(
                inside.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders at once"
            );
            tokio::task::yield_now().await;
            inside.fetch_sub(1, Ordering::SeqCst);
            entered.fetch_add(1, Ordering::SeqCst);
            guard.release().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(entered.load(Ordering::SeqCst), 12);

    // Held elsewhere longer than we wait: busy, not stolen.
    let held = a.acquire("customer:two@x.io").await.unwrap();
    let impatient = Arc::new(Locks::new(client_for(&backend, None), quick(20_000, 150)));
    let refused = impatient.acquire("customer:two@x.io").await;
    assert!(
        matches!(refused, Err(LockError::Busy { .. })),
        "{refused:?}"
    );
    held.release().await;
    impatient
        .acquire("customer:two@x.io")
        .await
        .unwrap()
        .release()
        .await;
}

#[tokio::test]
async fn a_lock_left_by_a_killed_holder_is_broken_after_its_ttl() {
    let backend = testkit::backend::backend().await;
    let ttl = Duration::from_millis(800);
    let timing = LockTiming {
        ttl,
        wait: Duration::from_secs(10),
        poll: Duration::from_millis(10),
    };
    let dead = Arc::new(Locks::new(client_for(&backend, None), timing));
    let guard = dead.acquire("customer:gone@x.io").await.unwrap();
    assert!(guard.ensure_held().is_ok());
    let abandoned_at = std::time::Instant::now();
    // The process dies: no release, ever.
    guard.abandon();

    let survivor = Arc::new(Locks::new(client_for(&backend, None), timing));
    let waited = std::time::Instant::now();
    let taken = tokio::time::timeout(
        Duration::from_secs(10),
        survivor.acquire("customer:gone@x.io"),
    )
    .await
    .expect("the stale lock is broken within the bound")
    .unwrap();
    assert!(
        waited.elapsed() >= ttl,
        "broken after {:?}, before its TTL",
        waited.elapsed()
    );
    assert!(abandoned_at.elapsed() < Duration::from_secs(5));
    assert_eq!(taken.generation(), 2);
    taken.release().await;

    // The holder that was merely slow finds its lease over and must not write.
    let slow = dead.acquire("customer:slow@x.io").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while slow.ensure_held().is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the lease runs out");
    slow.release().await;
}

#[tokio::test]
async fn old_generations_are_swept_but_never_the_newest_nor_the_first() {
    let backend = testkit::backend::backend().await;
    let locks = Arc::new(Locks::new(client_for(&backend, None), quick(20_000, 5_000)));
    for _ in 0..3 {
        locks.acquire("link:u1").await.unwrap().release().await;
    }
    let later = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    assert_eq!(
        locks.sweep(later).await.unwrap(),
        1,
        "only generation 2 goes"
    );
    assert_eq!(locks.sweep(later).await.unwrap(), 0);
    // Another process, knowing nothing, still finds the right next generation.
    let fresh = Arc::new(Locks::new(client_for(&backend, None), quick(20_000, 5_000)));
    let guard = fresh.acquire("link:u1").await.unwrap();
    assert_eq!(guard.generation(), 4);
    guard.release().await;
}

#[tokio::test]
async fn one_order_under_twenty_delivery_ids_on_two_replicas_takes_effect_once() {
    let address = "redelivered@customer.io";
    let event = order("order.completed", 9100, address, 9001);
    let backend = testkit::backend::backend().await;
    let replicas = [
        Arc::new(Access::new(client_for(&backend, None), plans())),
        Arc::new(Access::new(client_for(&backend, None), plans())),
    ];
    let start = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        // Redeliveries of one order, each under its own delivery id (a Standard Webhooks id,
        // or the id derived from the event for the classic `signature` header).
        let id = match i {
            0 => event.delivery_id(),
            _ => g3_core::ids::derive("webhook-id", &[&format!("msg_{i}")]),
        };
        let access = Arc::clone(&replicas[i % 2]);
        let (event, start) = (event.clone(), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            access.handle_delivery(&id, &event).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let events = Collection::<WebhookEvent>::new(&backend.client)
        .list(&[Query::limit(1)])
        .await
        .unwrap();
    assert_eq!(events.total, 20, "every delivery is kept");
    let state = customer_state(&backend.client, address).await;
    assert!(state.paid);
    assert_eq!(state.plans.len(), 1, "{state:#?}");
    assert_eq!(state.plans[0].5, 1, "one history entry: {state:#?}");
    let grants = state.audit.iter().filter(|(a, _)| a == "grant").count();
    assert_eq!(grants, 1, "one audit grant: {state:#?}");

    // The same order's dispute is another effect: it applies.
    let dispute = order("order.disputed", 9100, address, 9001);
    replicas[1]
        .handle_delivery(&dispute.delivery_id(), &dispute)
        .await
        .unwrap();
    let state = customer_state(&backend.client, address).await;
    assert!(!state.paid);
    assert_eq!(state.plans[0].5, 2, "{state:#?}");
}
