//! The bot's gateway connection (serenity `Client`, no cache): started only when something
//! needs it, the source-guild collector ([`crate::collect`]) or member joins of the customer
//! guild. Intents follow from that: GUILDS, GUILD_MESSAGES and MESSAGE_CONTENT for collecting,
//! GUILD_MEMBERS for joins (MESSAGE_CONTENT and GUILD_MEMBERS are privileged: they must be
//! switched on for the application in Discord's developer portal, or Discord refuses the
//! connection and the bot says so).

use std::{sync::Arc, time::Duration};

use serenity::{
    all::{
        ChannelId, ConnectionStage, Context, EventHandler, GatewayIntents, GuildId, Member,
        Message, MessageId, MessageUpdateEvent, Ready, ResumedEvent, ShardManager,
        ShardStageUpdateEvent,
    },
    async_trait,
    client::ClientBuilder,
};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    Settings,
    collect::{Collector, CollectorSettings},
};

/// A user joined the customer guild (GUILD_MEMBER_ADD); role sync consumes these.
pub use crate::roles::MemberJoined;

/// Whether the gateway runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GatewayMode {
    /// When the collector or a customer guild is configured.
    #[default]
    Auto,
    On,
    Off,
}

impl std::str::FromStr for GatewayMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "on" | "true" | "1" => Ok(Self::On),
            "off" | "false" | "0" => Ok(Self::Off),
            other => Err(format!(
                "unknown gateway mode {other:?}: use auto, on or off"
            )),
        }
    }
}

/// What the gateway does; the default runs it for the collector and for the customer guild's
/// member joins when role sync is on (`Settings::guild_id` and `plan_roles`).
#[derive(Clone, Debug, Default)]
pub struct GatewaySettings {
    pub mode: GatewayMode,
    /// Where member joins of the customer guild go instead of role sync (tests, embedding).
    pub member_joins: Option<mpsc::Sender<MemberJoined>>,
    /// The source-guild collector.
    pub collector: Option<CollectorSettings>,
}

/// Whether [`crate::run`] starts the gateway.
pub fn enabled(settings: &Settings) -> bool {
    match settings.gateway.mode {
        GatewayMode::Off => false,
        GatewayMode::On => true,
        GatewayMode::Auto => settings.gateway.collector.is_some() || wants_member_joins(settings),
    }
}

/// Member joins of the customer guild matter only to role sync (or to whoever asked for them):
/// without `PLAN_ROLES` the privileged members intent is not requested.
fn wants_member_joins(settings: &Settings) -> bool {
    settings.guild_id.is_some()
        && (!settings.plan_roles.is_empty() || settings.gateway.member_joins.is_some())
}

/// The intents a configuration needs.
pub fn intents(settings: &Settings) -> GatewayIntents {
    let mut intents = GatewayIntents::GUILDS;
    if settings.gateway.collector.is_some() {
        intents |= GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
    }
    if wants_member_joins(settings) {
        intents |= GatewayIntents::GUILD_MEMBERS;
    }
    intents
}

struct Handler {
    collector: Option<Arc<Collector>>,
    customer_guild: Option<u64>,
    joins: mpsc::Sender<MemberJoined>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, ready: Ready) {
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "gateway ready");
        if let Some(c) = &self.collector {
            c.on_connected();
        }
    }

    async fn resume(&self, _: Context, _: ResumedEvent) {
        tracing::info!("gateway session resumed");
        if let Some(c) = &self.collector {
            c.on_connected();
        }
    }

    async fn shard_stage_update(&self, _: Context, event: ShardStageUpdateEvent) {
        if event.new != ConnectionStage::Connected
            && let Some(c) = &self.collector
        {
            c.on_disconnected();
        }
    }

    async fn message(&self, _: Context, message: Message) {
        if let Some(c) = &self.collector {
            c.on_create(&message);
        }
    }

    async fn message_update(
        &self,
        _: Context,
        _: Option<Message>,
        _: Option<Message>,
        event: MessageUpdateEvent,
    ) {
        if let Some(c) = &self.collector {
            c.on_update(&event);
        }
    }

    async fn message_delete(
        &self,
        _: Context,
        channel: ChannelId,
        message: MessageId,
        guild: Option<GuildId>,
    ) {
        if let Some(c) = &self.collector {
            c.on_delete(guild.map(|g| g.get()), channel.get(), &[message.get()]);
        }
    }

    async fn message_delete_bulk(
        &self,
        _: Context,
        channel: ChannelId,
        messages: Vec<MessageId>,
        guild: Option<GuildId>,
    ) {
        if let Some(c) = &self.collector {
            let ids: Vec<u64> = messages.iter().map(|m| m.get()).collect();
            c.on_delete(guild.map(|g| g.get()), channel.get(), &ids);
        }
    }

    async fn guild_member_addition(&self, _: Context, member: Member) {
        let guild_id = member.guild_id.get();
        if self.customer_guild != Some(guild_id) {
            return;
        }
        let joined = MemberJoined {
            guild_id,
            user_id: member.user.id.get(),
        };
        if self.joins.send(joined).await.is_err() {
            tracing::debug!(?joined, "role sync is off: member join not forwarded");
        }
    }
}

/// The running gateway; [`Gateway::stop`] closes it.
pub struct Gateway {
    manager: Arc<tokio::sync::Mutex<Option<Arc<ShardManager>>>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts the gateway (and the collector, when configured) on background tasks. A connection
/// that ends with an error (Discord refused the token or the intents, say) is logged and tried
/// again after `settings.retry`'s longest pause.
pub fn start(
    settings: &Settings,
    appwrite: g3_appwrite::Client,
    http: Arc<serenity::http::Http>,
    joins: mpsc::Sender<MemberJoined>,
) -> anyhow::Result<Gateway> {
    let gw = &settings.gateway;
    let collector = match &gw.collector {
        Some(c) => Some(Collector::new(c.clone(), appwrite, http)?),
        None => None,
    };
    let mut tasks = Vec::new();
    if let Some(c) = &collector {
        tasks.push(tokio::spawn(c.clone().run()));
    }
    let manager = Arc::new(tokio::sync::Mutex::new(None));
    let intents = intents(settings);
    let handler = Arc::new(Handler {
        collector,
        customer_guild: settings.guild_id,
        joins,
    });
    // The gateway's own `Http`, built like the REST one (token, client, `DISCORD_API_URL`).
    let mut settings_for_http = settings.clone();
    settings_for_http.gateway = GatewaySettings::default();
    // Fails here (not in the task) when the client cannot be built.
    drop(crate::discord_http_builder(settings)?);
    let pause = settings.retry.max.max(Duration::from_secs(1));
    let slot = manager.clone();
    tasks.push(tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let http = match crate::discord_http_builder(&settings_for_http) {
                Ok(b) => b.build(),
                Err(e) => {
                    tracing::error!(error = %e, "gateway HTTP client could not be built");
                    return;
                }
            };
            let client = ClientBuilder::new_with_http(http, intents)
                .event_handler_arc(handler.clone())
                .await;
            match client {
                Ok(mut client) => {
                    *slot.lock().await = Some(client.shard_manager.clone());
                    match client.start().await {
                        Ok(()) => tracing::info!("gateway stopped"),
                        Err(e) => tracing::error!(
                            error = %e,
                            "gateway connection failed (is the token valid, and are the Message Content and Server Members intents enabled for the application?)"
                        ),
                    }
                }
                Err(e) => tracing::error!(error = %e, "gateway client could not be built"),
            }
            failures = failures.saturating_add(1);
            tokio::time::sleep(pause * failures.min(6)).await;
        }
    }));
    Ok(Gateway { manager, tasks })
}

impl Gateway {
    /// Closes the connection and stops the collector (its spool keeps what was not delivered).
    pub async fn stop(mut self) {
        if let Some(manager) = self.manager.lock().await.take() {
            manager.shutdown_all().await;
        }
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Gateway {
    /// Dropped without [`Gateway::stop`] (the bot's task aborted): its tasks end with it.
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
