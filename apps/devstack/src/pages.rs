//! devstack's own small site (`DEVSTACK_SANDBOX_ADDR`): the Discord sandbox page at `/` (in
//! real Discord mode, what that mode runs with) and the demo store at `/store` ([`demo_store`]).

use std::net::SocketAddr;

use appwrite_emulator::util::escape_html as escape;
use axum::{Router, extract::State, response::Html, routing::get};

use crate::{
    demo_store::{self, DemoStore},
    sandbox::Sandbox,
};

/// The running site.
pub struct Pages {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Home {
    sandbox: Option<Sandbox>,
    /// Real Discord mode: what it runs with and what is off, one line each.
    real: Vec<String>,
    web_url: String,
}

impl Pages {
    /// Serves the site on `listener` until [`Pages::stop`].
    pub fn start(
        listener: tokio::net::TcpListener,
        sandbox: Option<Sandbox>,
        real: Vec<String>,
        store: DemoStore,
    ) -> anyhow::Result<Pages> {
        let addr = listener.local_addr()?;
        let home = Home {
            sandbox,
            real,
            web_url: store.web_url.clone(),
        };
        let app = Router::new().route("/", get(page)).with_state(home).merge(
            Router::new()
                .route("/store", get(demo_store::show).post(demo_store::buy))
                .with_state(store),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Pages { addr, stop, task })
    }

    /// The sandbox page.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The demo store.
    pub fn store_url(&self) -> String {
        format!("http://{}/store", self.addr)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn page(State(home): State<Home>) -> Html<String> {
    let web = escape(&home.web_url);
    let links = format!(
        "<p><a href=\"/store\">Demo store</a> · <a href=\"{web}/account\">Your account</a> \
         (\"Link Discord\") · <a href=\"{web}/admin\">Admin console</a> · \
         <a href=\"{web}/feed\">Feed</a></p>"
    );
    match &home.sandbox {
        Some(sandbox) => Html(sandbox.page(&links)),
        None => Html(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>devstack</title><style>\
             body{{font-family:sans-serif;max-width:60em;margin:auto}}</style></head><body>\
             <h1>Real Discord mode</h1><p>The bot runs against Discord itself (DISCORD_BOT_TOKEN \
             is set), so there is no sandbox to show: look in your guild.</p>{links}<ul>{}</ul>\
             </body></html>",
            home.real
                .iter()
                .map(|l| format!("<li>{}</li>", escape(l)))
                .collect::<String>()
        )),
    }
}
