//! The sentinel's timer: checks the primary, its replicas and the peers,
//! and runs [`super::decide`]'s rules (down states, election, failover,
//! repointing replicas and a returning old primary).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::client::{Client, Reply, info_fields};
use super::decide::{Seen, best_replica, odown, votes_needed};

/// How often the loop runs.
const TICK: Duration = Duration::from_millis(100);
/// How often `INFO` and the peers are asked.
const REFRESH: Duration = Duration::from_millis(500);
/// Every call's timeout.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Cached connections, dropped on any error.
#[derive(Default)]
struct Links(HashMap<String, Client>);

impl Links {
    async fn call(&mut self, addr: &str, words: &[&str]) -> Option<Reply> {
        if !self.0.contains_key(addr) {
            let client = Client::connect(addr, CALL_TIMEOUT).await.ok()?;
            self.0.insert(addr.to_string(), client);
        }
        let client = self.0.get_mut(addr)?;
        match client.call(words).await {
            Ok(reply) => Some(reply),
            Err(_) => {
                self.0.remove(addr);
                None
            }
        }
    }
}

fn split(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (addr.to_string(), String::new()),
    }
}

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut links = Links::default();
    let mut tick = tokio::time::interval(TICK);
    let mut last_refresh = Instant::now() - REFRESH;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let refresh = last_refresh.elapsed() >= REFRESH;
        if refresh {
            last_refresh = Instant::now();
        }
        let (master, replicas) = {
            let view = shared.view.lock();
            (
                view.master.addr.clone(),
                view.replicas.keys().cloned().collect::<Vec<_>>(),
            )
        };
        check(&shared, &mut links, &master, true, refresh).await;
        for addr in &replicas {
            check(&shared, &mut links, addr, false, refresh).await;
        }
        if refresh {
            poll_peers(&shared, &mut links).await;
            repoint(&shared, &mut links).await;
        }
        if let Some(epoch) = elect(&shared, &mut links).await {
            failover(&shared, &mut links, epoch).await;
        }
    }
}

/// PINGs `addr`, and on `refresh` reads its `INFO` into the view.
async fn check(shared: &Shared, links: &mut Links, addr: &str, is_master: bool, refresh: bool) {
    let ok = match links.call(addr, &["PING"]).await {
        Some(Reply::Status(s)) => s == "PONG",
        Some(Reply::Error(e)) => e.starts_with("LOADING") || e.starts_with("MASTERDOWN"),
        _ => false,
    };
    let info = if ok && refresh {
        links.call(addr, &["INFO"]).await.and_then(|r| r.text())
    } else {
        None
    };
    let mut view = shared.view.lock();
    let now = Instant::now();
    let down_after = view.config.down_after();
    let seen = if is_master {
        if view.master.addr != addr {
            return; // switched meanwhile
        }
        &mut view.master
    } else {
        match view.replicas.get_mut(addr) {
            Some(seen) => seen,
            None => return,
        }
    };
    if ok {
        if seen.sdown(now, down_after) {
            tracing::info!(instance = addr, "-sdown");
        }
        seen.last_ok = now;
    }
    let Some(info) = info else { return };
    let fields = info_fields(&info);
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    seen.role_master = get("role").as_deref() == Some("master");
    seen.link_up = get("master_link_status").as_deref() == Some("up");
    seen.offset = get("slave_repl_offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    seen.priority = get("slave_priority")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    seen.run_id = get("run_id").unwrap_or_default();
    seen.master_addr = match (get("master_host"), get("master_port")) {
        (Some(h), Some(p)) => Some(format!("{h}:{p}")),
        _ => None,
    };
    if is_master && seen.role_master {
        // Replicas it reports: `slaveN:ip=..,port=..,state=..`.
        let found: Vec<String> = fields
            .iter()
            .filter(|(k, _)| {
                k.starts_with("slave") && k[5..].chars().all(|c| c.is_ascii_digit()) && k.len() > 5
            })
            .filter_map(|(_, v)| {
                let part = |name: &str| {
                    v.split(',')
                        .find_map(|kv| kv.strip_prefix(name).map(str::to_string))
                };
                Some(format!("{}:{}", part("ip=")?, part("port=")?))
            })
            .collect();
        for addr in found {
            if addr != view.master.addr && !view.replicas.contains_key(&addr) {
                tracing::info!(replica = %addr, "+slave");
                view.replicas.insert(addr.clone(), Seen::new(addr, now));
            }
        }
    }
}

/// Adopts a peer's newer configuration (the result of a failover it led).
async fn poll_peers(shared: &Shared, links: &mut Links) {
    let (peers, name) = {
        let view = shared.view.lock();
        (
            view.peers.keys().cloned().collect::<Vec<_>>(),
            view.config.master_name.clone(),
        )
    };
    for peer in peers {
        let id = links
            .call(&peer, &["SENTINEL", "myid"])
            .await
            .and_then(|r| r.text());
        let master = links.call(&peer, &["SENTINEL", "master", &name]).await;
        let mut view = shared.view.lock();
        let Some(entry) = view.peers.get_mut(&peer) else {
            continue;
        };
        if let Some(id) = id {
            entry.run_id = id;
            entry.last_ok = Some(Instant::now());
        }
        let Some(Reply::Array(Some(items))) = master else {
            continue;
        };
        let texts: Vec<String> = items.iter().filter_map(Reply::text).collect();
        let field = |k: &str| {
            texts
                .chunks(2)
                .find(|c| c.len() == 2 && c[0] == k)
                .map(|c| c[1].clone())
        };
        let (Some(ip), Some(port), Some(epoch)) = (
            field("ip"),
            field("port"),
            field("config-epoch").and_then(|e| e.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let addr = format!("{ip}:{port}");
        if epoch > view.config_epoch && addr != view.master.addr {
            drop(view);
            switch(shared, &addr, epoch);
        } else if epoch > view.config_epoch {
            view.config_epoch = epoch;
        }
    }
}

/// Makes `new` the primary in our view at `epoch` and tells subscribers.
fn switch(shared: &Shared, new: &str, epoch: u64) {
    let mut view = shared.view.lock();
    let now = Instant::now();
    let old = view.master.addr.clone();
    let mut promoted = view
        .replicas
        .remove(new)
        .unwrap_or_else(|| Seen::new(new.to_string(), now));
    promoted.last_ok = now;
    let mut demoted = std::mem::replace(&mut view.master, promoted);
    demoted.role_master = true;
    view.replicas.insert(old.clone(), demoted);
    view.config_epoch = epoch;
    view.ballot.current_epoch = view.ballot.current_epoch.max(epoch);
    view.odown_since = None;
    view.forced = false;
    for peer in view.peers.values_mut() {
        peer.says_down = false;
    }
    let name = view.config.master_name.clone();
    drop(view);
    let (oh, op) = split(&old);
    let (nh, np) = split(new);
    shared.publish("+switch-master", format!("{name} {oh} {op} {nh} {np}"));
}

/// Sends `REPLICAOF <primary>` to every replica that follows another
/// server, or claims to be a primary (the old one, back), once the primary
/// itself answers.
async fn repoint(shared: &Shared, links: &mut Links) {
    let (master, wrong) = {
        let view = shared.view.lock();
        let now = Instant::now();
        let down_after = view.config.down_after();
        if view.master.sdown(now, down_after) || !view.master.role_master {
            return;
        }
        let master = view.master.addr.clone();
        let wrong: Vec<String> = view
            .replicas
            .values()
            .filter(|r| !r.sdown(now, down_after))
            .filter(|r| r.role_master || r.master_addr.as_deref().is_some_and(|m| m != master))
            .map(|r| r.addr.clone())
            .collect();
        (master, wrong)
    };
    let (host, port) = split(&master);
    for addr in wrong {
        tracing::info!(replica = %addr, primary = %master, "+convert-to-slave");
        let _ = links.call(&addr, &["REPLICAOF", &host, &port]).await;
        if let Some(seen) = shared.view.lock().replicas.get_mut(&addr) {
            seen.role_master = false;
            seen.master_addr = Some(master.clone());
        }
    }
}

/// `SENTINEL is-master-down-by-addr` to `peer`: with `run_id` `*` only
/// whether it sees the primary down, with ours also a vote request.
async fn ask_down(
    links: &mut Links,
    peer: &str,
    host: &str,
    port: &str,
    epoch: u64,
    run_id: &str,
) -> Option<Reply> {
    let epoch = epoch.to_string();
    links
        .call(
            peer,
            &[
                "SENTINEL",
                "is-master-down-by-addr",
                host,
                port,
                &epoch,
                run_id,
            ],
        )
        .await
}

/// Down states, and an election when the primary is objectively down:
/// the epoch this sentinel won, if it did.
async fn elect(shared: &Shared, links: &mut Links) -> Option<u64> {
    let (addr, sdown, epoch_now, peers, forced) = {
        let view = shared.view.lock();
        let sdown = view.master.sdown(Instant::now(), view.config.down_after());
        (
            view.master.addr.clone(),
            sdown,
            view.ballot.current_epoch,
            view.peers.keys().cloned().collect::<Vec<_>>(),
            view.forced,
        )
    };
    if !sdown && !forced {
        let mut view = shared.view.lock();
        if view.odown_since.take().is_some() {
            tracing::info!(primary = %addr, "-odown");
        }
        return None;
    }
    let (host, port) = split(&addr);
    // Ask whether the peers see it down too.
    let mut agreeing = 0;
    if !forced {
        for peer in &peers {
            let reply = ask_down(links, peer, &host, &port, epoch_now, "*").await;
            let down = matches!(&reply, Some(Reply::Array(Some(items))) if items.first() == Some(&Reply::Int(1)));
            agreeing += usize::from(down);
            if let Some(p) = shared.view.lock().peers.get_mut(peer) {
                p.says_down = down;
            }
        }
    }
    let (epoch, me, needed) = {
        let mut view = shared.view.lock();
        let now = Instant::now();
        let is_odown = forced || odown(sdown, agreeing, view.config.quorum);
        if !is_odown {
            return None;
        }
        if view.odown_since.is_none() {
            // A random delay, so sentinels rarely ask for votes at once.
            view.odown_since = Some(now + Duration::from_millis(fastrand::u64(..400)));
            shared.publish(
                "+odown",
                format!(
                    "master {} {host} {port} #quorum {}/{}",
                    view.config.master_name,
                    agreeing + 1,
                    view.config.quorum
                ),
            );
        }
        if view.odown_since.is_some_and(|at| now < at) {
            return None;
        }
        let retry_after = Duration::from_millis(view.config.failover_timeout_ms * 2);
        if view
            .failover
            .is_some_and(|(_, started)| now.saturating_duration_since(started) < retry_after)
        {
            return None;
        }
        let epoch = view.ballot.current_epoch + 1;
        let me = view.run_id.clone();
        view.ballot.vote(epoch, &me);
        view.failover = Some((epoch, now));
        (
            epoch,
            me,
            votes_needed(view.peers.len() + 1, view.config.quorum),
        )
    };
    shared.publish(
        "+try-failover",
        format!("master {host} {port} epoch {epoch}"),
    );
    let mut votes = 1;
    for peer in &peers {
        let reply = ask_down(links, peer, &host, &port, epoch, &me).await;
        if let Some(Reply::Array(Some(items))) = reply
            && items.get(1).and_then(Reply::text).as_deref() == Some(me.as_str())
            && items.get(2) == Some(&Reply::Int(epoch as i64))
        {
            votes += 1;
        }
    }
    if votes >= needed || forced {
        shared.publish(
            "+elected-leader",
            format!("master {host} {port} epoch {epoch} votes {votes}"),
        );
        Some(epoch)
    } else {
        shared.publish(
            "-failover-abort-not-elected",
            format!("master {host} {port} epoch {epoch} votes {votes}"),
        );
        None
    }
}

/// Promotes the best replica, waits until it reports itself primary, then
/// switches and repoints the others.
async fn failover(shared: &Shared, links: &mut Links, epoch: u64) {
    let (chosen, timeout) = {
        let view = shared.view.lock();
        let chosen = best_replica(
            view.replicas.values(),
            Instant::now(),
            view.config.down_after(),
        )
        .map(|r| r.addr.clone());
        (
            chosen,
            Duration::from_millis(view.config.failover_timeout_ms),
        )
    };
    let Some(chosen) = chosen else {
        shared.publish("-failover-abort-no-good-slave", format!("epoch {epoch}"));
        shared.view.lock().forced = false;
        return;
    };
    shared.publish("+selected-slave", chosen.clone());
    let deadline = Instant::now() + timeout;
    let _ = links.call(&chosen, &["REPLICAOF", "NO", "ONE"]).await;
    loop {
        let role = links.call(&chosen, &["ROLE"]).await;
        if let Some(Reply::Array(Some(items))) = &role
            && items.first().and_then(Reply::text).as_deref() == Some("master")
        {
            break;
        }
        if Instant::now() > deadline {
            shared.publish("-failover-abort-slave-timeout", chosen);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.publish("+promoted-slave", chosen.clone());
    switch(shared, &chosen, epoch);
    // Repoint the others now; `repoint` keeps at it for those not reachable.
    let others: Vec<String> = shared.view.lock().replicas.keys().cloned().collect();
    let (host, port) = split(&chosen);
    for addr in others {
        let _ = links.call(&addr, &["REPLICAOF", &host, &port]).await;
    }
    shared.publish("+failover-end", format!("epoch {epoch}"));
}
