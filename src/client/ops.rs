//! The client operations: CONNECT (options, auth, account binding), PING, SUB and
//! UNSUB (with permissions and import shadows), and PUB/HPUB into dispatch, each with
//! nats-server's answers. The read loop in `mod.rs` calls these per parsed op.

use super::*;

impl Conn {
    pub(super) fn process_connect(&mut self, json: &[u8]) -> Result<(), Close> {
        let Ok(opts) = serde_json::from_slice::<ConnectInfo>(json) else {
            return Err(Close::new(CloseReason::ProtocolViolation, None));
        };
        if !(0..=1).contains(&opts.protocol) {
            return Err(Close::new(
                CloseReason::BadClientProtocolVersion,
                Some("invalid client protocol"),
            ));
        }
        if opts.no_responders && !opts.headers {
            return Err(Close::new(
                CloseReason::NoRespondersRequiresHeaders,
                Some("no responders requires headers support"),
            ));
        }
        // Legacy account fields are refused even without auth (inside authenticate).
        let authed =
            match self
                .sec
                .auth
                .authenticate(&opts, self.nonce.as_bytes(), &self.cert_names)
            {
                Ok(a) => a,
                Err(denied) => {
                    tracing::error!(
                        "{} - cid:{} - authentication error{}",
                        self.client.addr,
                        self.client.cid,
                        denied.log_suffix()
                    );
                    return Err(Close::new(
                        CloseReason::AuthenticationViolation,
                        Some("Authorization Violation"),
                    ));
                }
            };
        self.bind_jwt(&authed)?;
        self.proven_secret = authed.secret.clone();
        self.perms = match authed.perms {
            Some(p) => Some(ConnPerms::new(p, &self.client.perm_hook)),
            None => {
                ConnPerms::clear(&self.client.perm_hook);
                None
            }
        };
        let account = match &authed.account {
            Some(name) => self.server.accounts.get_or_register(name),
            None => self.server.global().clone(),
        };
        // nats-server's connection string after CONNECT: `"v<version>:<lang>:<name>"`
        // (the parts the client sent) then the user, each followed by ` - `.
        self.tag = client_tag(&opts);
        if let Some(tag) = &authed.log_tag {
            self.tag.push_str(&format!("\"{tag}\" - "));
        } else if !authed.user.is_empty() {
            self.tag
                .push_str(&format!("\"{}/user:{}\" - ", account.name, authed.user));
        }
        if !Arc::ptr_eq(&account, &self.account) {
            self.cache.reset();
        }
        self.account = account.clone();
        {
            let mut m = self.client.meta.lock();
            account.num_connections.fetch_add(1, Ordering::Relaxed);
            if let Some(old) = m.account.replace(account) {
                old.num_connections.fetch_sub(1, Ordering::Relaxed);
            }
            m.name = opts.name.clone().unwrap_or_default();
            m.lang = opts.lang.clone().unwrap_or_default();
            m.version = opts.version.clone().unwrap_or_default();
            m.user = authed.user;
            m.log_tag = self.tag.clone();
        }
        let headers = opts.headers && !self.cfg.no_header_support;
        self.client.headers.store(headers, Ordering::Relaxed);
        self.opts = opts;
        self.opts.headers = headers;
        self.connected = true;
        self.ok();
        self.check_zero_subs()?;
        Ok(())
    }

    pub(super) fn process_ping(&mut self) {
        self.trace_out("PONG");
        self.send(encode::PONG);
        if self.connected && !self.first_pong_sent && self.opts.protocol >= 1 {
            // The async INFO after the first PONG tells the client it is bound ($G).
            self.send(&self.server.connect_info_line(
                self.client.cid,
                &self.client.addr,
                self.client.websocket,
                &self.account.name,
            ));
            self.client.async_info.store(true, Ordering::Release);
        }
        if self.connected {
            self.first_pong_sent = true;
        }
        self.pcd.add(&self.client);
    }

    pub(super) fn process_sub(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        self.interest_changed = true;
        if let Some(p) = &mut self.perms {
            if !p.can_subscribe(subject, queue) {
                self.sub_violation(subject, queue, sid);
                return;
            }
        }
        if !subject::is_valid_subject(subject)
            || queue.is_some_and(|q| !subject::is_valid_queue_name(q))
        {
            self.send_err("Invalid Subject");
            self.pcd.add(&self.client);
            return;
        }
        let max_subs = self.max_subs();
        let sub = {
            let mut subs = self.client.subs.lock();
            if subs.contains_key(sid) {
                // nats-server keeps the first registration of a duplicate sid.
                None
            } else if max_subs.is_some_and(|m| subs.len() >= m) {
                drop(subs);
                self.send_err("maximum subscriptions exceeded");
                self.pcd.add(&self.client);
                return;
            } else {
                let mut s = Subscription::new(
                    self.client.clone(),
                    self.account.clone(),
                    subject,
                    queue,
                    sid,
                );
                s.shadows = self.shadow_subs(subject, queue, sid);
                let s = Arc::new(s);
                subs.insert(sid.into(), s.clone());
                Some(s)
            }
        };
        if let Some(s) = sub {
            if self
                .account
                .sublist
                .insert(subject, queue, SubRef(s.clone()))
                .is_err()
            {
                self.client.subs.lock().remove(sid);
                self.send_err("Invalid Subject");
                self.pcd.add(&self.client);
                return;
            }
            let routes = &self.server.routes;
            routes.local_interest_added(self.account.name_bytes(), subject, queue);
            for sh in &s.shadows {
                if sh
                    .account
                    .sublist
                    .insert(&sh.subject, queue, SubRef(sh.clone()))
                    .is_ok()
                {
                    routes.local_interest_added(sh.account.name_bytes(), &sh.subject, queue);
                }
            }
        }
        self.ok();
    }

    /// Shadow subscriptions in exporting accounts for the stream imports `subject`
    /// overlaps (none for accounts without stream imports).
    fn shadow_subs(
        &self,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Vec<Arc<Subscription>> {
        crate::account::shadow_subjects(self.account.stream_imports(), subject)
            .map(|(im, shadow)| {
                let mut sh =
                    Subscription::new(self.client.clone(), im.from.clone(), &shadow, queue, sid);
                sh.import = Some(im.map.clone());
                Arc::new(sh)
            })
            .collect()
    }

    pub(super) fn process_unsub(&mut self, sid: &[u8], max: Option<u64>) {
        self.interest_changed = true;
        let removed = {
            let mut subs = self.client.subs.lock();
            match (subs.get(sid), max) {
                (Some(s), Some(max)) if max > s.delivered.load(Ordering::Relaxed) => {
                    s.max.store(max, Ordering::Relaxed);
                    None
                }
                (Some(_), _) => subs.remove(sid),
                (None, _) => None,
            }
        };
        if let Some(s) = &removed {
            remove_local_sub(&self.server, s);
        }
        self.ok();
        // nats-server traces the +OK before the removal.
        if removed.is_some() {
            self.trace_delsub(sid);
        }
    }

    pub(super) fn process_pub(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        hdr_len: Option<usize>,
        payload: &[u8],
    ) -> Result<(), Close> {
        if hdr_len.is_some() && !self.opts.headers {
            return Err(Close::new(CloseReason::ProtocolViolation, None));
        }
        self.in_msgs += 1;
        self.in_bytes += payload.len() as u64;
        if self.opts.pedantic && !subject::is_valid_publish_subject(subject) {
            self.send_err("Invalid Publish Subject");
            self.pcd.add(&self.client);
        }
        if let Some((err, log)) = self.pub_violation(subject, reply) {
            tracing::error!("{}Publish Violation - {log}", self.who());
            self.send_err(&err);
            self.pcd.add(&self.client);
            return Ok(());
        }
        // nats-server acknowledges a verbose PUB before delivering it.
        self.ok();
        let server = &*self.server;
        let result = self.cache.lookup(&self.account, subject);
        let msg = Msg {
            subject,
            reply,
            hdr_len,
            payload,
        };
        let origin = Origin::Client {
            cid: self.client.cid,
            echo: self.opts.echo,
        };
        // Message tracing (telemetry::msg): only HPUB with tracing on gets past `start`.
        let traced = crate::telemetry::msg::start(server, hdr_len, payload);
        let delivered = dispatch::deliver(
            server,
            &self.account,
            &result,
            &msg,
            &origin,
            &mut self.rng,
            &mut self.pcd,
        );
        if let Some(t) = traced {
            t.published(server, &self.client, subject, &result, delivered);
        }
        if delivered == 0 && self.opts.no_responders {
            if let Some(reply) = reply {
                dispatch::send_no_responders(
                    &self.account,
                    &self.client,
                    subject,
                    reply,
                    &mut self.pcd,
                );
            }
        }
        Ok(())
    }

    /// Reserved subjects and replies (every client), then the user's publish permission.
    /// Returns the -ERR text and the log detail.
    #[inline]
    fn pub_violation(&mut self, subject: &[u8], reply: Option<&[u8]>) -> Option<(String, String)> {
        let denied = permissions::reserved_subject(subject)
            || self.perms.as_mut().is_some_and(|p| !p.can_publish(subject));
        if denied {
            let q = permissions::go_quote(subject);
            return Some((
                format!("Permissions Violation for Publish to {q}"),
                format!("Subject {q}"),
            ));
        }
        match reply {
            Some(r) if permissions::reserved_reply(r) => {
                let q = permissions::go_quote(r);
                Some((
                    format!("Permissions Violation for Publish with Reply of {q}"),
                    format!("Reply {q}"),
                ))
            }
            _ => None,
        }
    }

    fn sub_violation(&mut self, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        let s = permissions::go_quote(subject);
        let sid = String::from_utf8_lossy(sid);
        let (err, log) = match queue {
            Some(q) => {
                let q = permissions::go_quote(q);
                (
                    format!("Permissions Violation for Subscription to {s} using queue {q}"),
                    format!("Subject {s}, Queue: {q}, SID {sid}"),
                )
            }
            None => (
                format!("Permissions Violation for Subscription to {s}"),
                format!("Subject {s}, SID {sid}"),
            ),
        };
        tracing::error!("{}Subscription Violation - {log}", self.who());
        self.send_err(&err);
        self.pcd.add(&self.client);
    }
}

/// The client part of nats-server's log prefix: version (with a `v`), lang and name,
/// those the client sent, joined by `:`; empty when it sent none.
fn client_tag(opts: &ConnectInfo) -> String {
    let version = opts
        .version
        .as_deref()
        .filter(|v| !v.is_empty())
        .map(|v| format!("v{v}"));
    let parts: Vec<&str> = [
        version.as_deref(),
        opts.lang.as_deref(),
        opts.name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("\"{}\" - ", parts.join(":"))
    }
}
