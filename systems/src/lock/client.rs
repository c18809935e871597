//! A lock client. Each cycle: acquire the lock, read the counter it
//! protects, work, check the lease (renewing it when less than half is
//! left), prepare the write, write the counter back incremented with the
//! token, release. Every step is a history operation (`acquire`, `read`,
//! `keepalive`, `write`, `release`), keyed by the lock.
//!
//! The client's view of its lease runs from when it first *sent* the
//! request that got it, for the TTL on its own monotonic clock; it reports
//! that view (`Holds`), so "lock leases never overlap" judges what clients
//! believed. It checks the view once, after its work, and then writes
//! without looking again: a pause or a slow network between the check and
//! the write's arrival is the mistake fencing exists for.

use std::time::Duration;

use harness::history::Value;
use harness::node::{Ctx, NodeId, TimerId};
use harness::time::MonoTime;

use super::{Config, LockNode, LockObs, LockOp, Msg, Reply, Timer, Token, Variant};
use crate::ClientOp;

/// Where a cycle is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Acquire,
    Read,
    Keepalive,
    Write,
    Release,
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Acquire => "acquire",
            Step::Read => "read",
            Step::Keepalive => "keepalive",
            Step::Write => "write",
            Step::Release => "release",
        }
    }
}

/// One cycle on one lock.
#[derive(Clone, Debug)]
struct Cycle {
    lock: String,
    /// Acquire attempts so far.
    attempts: u32,
    token: Token,
    /// The client's view of its lease: held until its monotonic clock reads this.
    until: Option<MonoTime>,
    value: i64,
}

/// The request in flight.
struct Pending {
    id: u64,
    step: Step,
    msg: Msg,
    /// Where it went: one server, or every `redlock` server.
    to: Vec<NodeId>,
    sends: u32,
    timer: TimerId,
    /// When it was first sent (a lease runs from there).
    sent_at: MonoTime,
    /// `redlock`'s acquire and release: sent to every server at once, and
    /// decided on their answers (however few servers there are).
    fanout: bool,
    /// With `fanout`: the servers' answers so far.
    answers: Vec<(NodeId, Reply)>,
}

pub struct LockClient {
    config: Config,
    script: Vec<ClientOp>,
    next: usize,
    probes: u64,
    next_id: u64,
    /// The service server it believes leads.
    leader: NodeId,
    cycle: Option<Cycle>,
    pending: Option<Pending>,
}

/// Sends of one request to the service or the resource before giving up.
const SENDS: u32 = 6;

impl LockClient {
    pub fn new(config: Config, script: Vec<ClientOp>) -> Self {
        LockClient {
            config,
            script,
            next: 0,
            probes: 0,
            next_id: 0,
            leader: NodeId::server(0),
            cycle: None,
            pending: None,
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        ctx.set_timer(self.config.think, Timer::Think);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, LockNode>, timer: Timer) {
        match timer {
            Timer::Think => self.on_think_timeout(ctx),
            Timer::Work => self.on_work_timeout(ctx),
            Timer::Prepare => self.on_prepare_timeout(ctx),
            Timer::Retry => self.acquire(ctx),
            Timer::Request(id) => self.on_request_timeout(ctx, id),
            other => panic!("{} got a server's timer: {other:?}", ctx.me()),
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Reply { id, reply } => self.on_reply(ctx, from, id, reply),
            Msg::NotLeader { id, hint } => self.on_not_leader(ctx, id, hint),
            other => panic!("{} got a server's message: {other:?}", ctx.me()),
        }
    }

    /// The next cycle: the script's next lock, then probes on `l0`.
    fn on_think_timeout(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let lock = match self.script.get(self.next) {
            Some(op) => op.key.clone(),
            None => {
                self.probes += 1;
                "l0".to_owned()
            }
        };
        self.next += 1;
        self.cycle = Some(Cycle { lock, attempts: 0, token: Token(0), until: None, value: 0 });
        self.acquire(ctx);
    }

    fn acquire(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let cycle = self.cycle.as_mut().expect("a cycle");
        cycle.attempts += 1;
        let op = LockOp::Acquire { lock: cycle.lock.clone(), ttl: self.config.ttl };
        let to = if self.config.variant == Variant::Redlock {
            Config::service_servers(ctx.servers()).to_vec()
        } else {
            vec![self.service_server(ctx)]
        };
        self.request(ctx, Step::Acquire, Value::Null, op_msg(op), to);
    }

    /// Where service requests go: the leader it believes in (`n1` for the single server).
    fn service_server(&self, ctx: &Ctx<'_, LockNode>) -> NodeId {
        match self.config.variant {
            Variant::TokenNotPersisted => NodeId::server(0),
            _ => self.leader.min(*Config::service_servers(ctx.servers()).last().expect("a service")),
        }
    }

    /// Records `step` as invoked and sends its request.
    fn request(&mut self, ctx: &mut Ctx<'_, LockNode>, step: Step, input: Value, msg: Msg, to: Vec<NodeId>) {
        let lock = self.cycle.as_ref().expect("a cycle").lock.clone();
        self.next_id += 1;
        let id = self.next_id;
        let msg = with_id(msg, id);
        ctx.invoke(step.name(), Some(&lock), input);
        for &server in &to {
            ctx.send(server, msg.clone());
        }
        let timer = ctx.set_timer(self.config.request_timeout, Timer::Request(id));
        let sent_at = ctx.mono_now();
        let fanout = self.config.variant == Variant::Redlock && matches!(step, Step::Acquire | Step::Release);
        self.pending = Some(Pending { id, step, msg, to, sends: 1, timer, sent_at, fanout, answers: Vec::new() });
    }

    fn on_not_leader(&mut self, ctx: &mut Ctx<'_, LockNode>, id: u64, hint: Option<NodeId>) {
        let Some(p) = self.pending.as_ref().filter(|p| p.id == id && !p.fanout) else { return };
        let service = Config::service_servers(ctx.servers());
        self.leader =
            hint.filter(|h| service.contains(h) && *h != p.to[0]).unwrap_or_else(|| following(service, p.to[0]));
        self.resend(ctx);
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, LockNode>, id: u64) {
        let Some(p) = self.pending.as_ref() else { return };
        assert_eq!(p.id, id, "a request timer outlived its request");
        if !p.fanout && p.step != Step::Read && p.step != Step::Write {
            self.leader = following(Config::service_servers(ctx.servers()), p.to[0]);
        }
        if p.fanout {
            // `redlock`: no more waiting; judge the answers there are.
            let p = self.pending.take().expect("checked");
            self.redlock_decide(ctx, p);
            return;
        }
        self.resend(ctx);
    }

    /// Sends the request in flight again (the same id), or gives up.
    fn resend(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let Some(mut p) = self.pending.take() else { return };
        ctx.cancel_timer(p.timer);
        if p.sends >= SENDS {
            self.gave_up(ctx, p.step);
            return;
        }
        p.sends += 1;
        if p.step != Step::Read && p.step != Step::Write {
            p.to = vec![self.service_server(ctx)];
        }
        ctx.send(p.to[0], p.msg.clone());
        p.timer = ctx.set_timer(self.config.request_timeout, Timer::Request(p.id));
        self.pending = Some(p);
    }

    /// No answer after every send: a read did nothing; anything else may
    /// still take effect.
    fn gave_up(&mut self, ctx: &mut Ctx<'_, LockNode>, step: Step) {
        if step == Step::Read {
            ctx.fail(Value::Null);
        } else {
            ctx.info(Value::Null);
        }
        match step {
            // A grant may still come: the service times the lease out.
            Step::Acquire | Step::Release => self.end_cycle(ctx),
            Step::Read | Step::Keepalive | Step::Write => self.release(ctx),
        }
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, id: u64, reply: Reply) {
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id) else { return };
        if p.fanout {
            if !p.answers.iter().any(|(s, _)| *s == from) {
                p.answers.push((from, reply));
            }
            if p.answers.len() == p.to.len() {
                let p = self.pending.take().expect("checked");
                ctx.cancel_timer(p.timer);
                self.redlock_decide(ctx, p);
            }
            return;
        }
        if p.to[0] != from {
            return; // an answer to an earlier send, from a server given up on
        }
        let p = self.pending.take().expect("checked");
        ctx.cancel_timer(p.timer);
        match p.step {
            Step::Acquire => self.on_acquire_reply(ctx, from, p.sent_at, reply),
            Step::Read => self.on_read_reply(ctx, reply),
            Step::Keepalive => self.on_keepalive_reply(ctx, p.sent_at, reply),
            Step::Write => {
                match reply {
                    Reply::Written => ctx.ok(Value::Null),
                    _ => ctx.fail(Value::from("fenced")),
                }
                self.release(ctx);
            }
            Step::Release => {
                ctx.ok(Value::Null);
                self.end_cycle(ctx);
            }
        }
    }

    fn on_acquire_reply(&mut self, ctx: &mut Ctx<'_, LockNode>, from: NodeId, sent_at: MonoTime, reply: Reply) {
        self.leader = from;
        match reply {
            Reply::Granted { token } => {
                ctx.ok(Value::Int(token.0 as i64));
                self.granted(ctx, token, sent_at.saturating_add(self.config.ttl));
            }
            _ => {
                ctx.fail(Value::from("busy"));
                self.busy(ctx);
            }
        }
    }

    /// Got the lock until `until`: on to the read, unless that already passed.
    fn granted(&mut self, ctx: &mut Ctx<'_, LockNode>, token: Token, until: MonoTime) {
        let cycle = self.cycle.as_mut().expect("a cycle");
        cycle.token = token;
        if ctx.mono_now() >= until {
            self.release(ctx); // the grant came too late to use
            return;
        }
        cycle.until = Some(until);
        ctx.observe(LockObs::Holds { lock: cycle.lock.clone(), token, until });
        let msg = Msg::Read { id: 0, key: cycle.lock.clone(), token };
        let resource = Config::resource(ctx.servers());
        self.request(ctx, Step::Read, Value::Null, msg, vec![resource]);
    }

    /// Someone else holds it: try again later, or give the cycle up.
    fn busy(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let cycle = self.cycle.as_ref().expect("a cycle");
        if cycle.attempts >= self.config.tries {
            self.end_cycle(ctx);
            return;
        }
        let wait = ctx.rng().duration_between(self.config.ttl / 8, self.config.ttl / 2);
        ctx.set_timer(wait, Timer::Retry);
    }

    fn on_read_reply(&mut self, ctx: &mut Ctx<'_, LockNode>, reply: Reply) {
        match reply {
            Reply::Value { value } => {
                ctx.ok(value.map_or(Value::Null, Value::Int));
                self.cycle.as_mut().expect("a cycle").value = value.unwrap_or(0);
                let work = ctx.rng().duration_between(Duration::ZERO, self.config.work);
                ctx.set_timer(work, Timer::Work);
            }
            _ => {
                ctx.fail(Value::from("fenced"));
                self.release(ctx);
            }
        }
    }

    /// Work done: check the lease, renewing it if less than half is left.
    fn on_work_timeout(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        self.check_lease(ctx, true);
    }

    /// Checks the lease: gone, write nothing; less than half left (and
    /// `may_renew`), renew it first; otherwise prepare the write. One
    /// renewal per check: on a network slower than half the TTL a client
    /// that renewed every time it found less than half left would never write.
    fn check_lease(&mut self, ctx: &mut Ctx<'_, LockNode>, may_renew: bool) {
        let cycle = self.cycle.as_ref().expect("a cycle");
        let until = cycle.until.expect("held");
        let now = ctx.mono_now();
        if now >= until {
            self.release(ctx); // it ran out: write nothing
            return;
        }
        let renewable = may_renew && self.config.variant != Variant::Redlock;
        if renewable && until.saturating_sub(now) < self.config.ttl / 2 {
            let op = LockOp::Keepalive { lock: cycle.lock.clone(), token: cycle.token };
            let to = vec![self.service_server(ctx)];
            self.request(ctx, Step::Keepalive, Value::Int(cycle.token.0 as i64), op_msg(op), to);
            return;
        }
        ctx.observe(LockObs::LeaseChecked { lock: cycle.lock.clone() });
        ctx.set_timer(self.config.prepare, Timer::Prepare);
    }

    fn on_keepalive_reply(&mut self, ctx: &mut Ctx<'_, LockNode>, sent_at: MonoTime, reply: Reply) {
        if reply != Reply::Renewed {
            ctx.fail(Value::from("lost"));
            self.end_cycle(ctx); // the lease is gone: nothing to release
            return;
        }
        ctx.ok(Value::Null);
        let cycle = self.cycle.as_mut().expect("a cycle");
        let until = sent_at.saturating_add(self.config.ttl).max(cycle.until.expect("held"));
        if ctx.mono_now() >= until {
            self.release(ctx); // the renewal came too late to use
            return;
        }
        cycle.until = Some(until);
        ctx.observe(LockObs::Holds { lock: cycle.lock.clone(), token: cycle.token, until });
        self.check_lease(ctx, false);
    }

    /// The write goes out, unchecked since the lease check.
    fn on_prepare_timeout(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let cycle = self.cycle.as_ref().expect("a cycle");
        let value = cycle.value.saturating_add(1);
        let msg = Msg::Write { id: 0, key: cycle.lock.clone(), value, token: cycle.token };
        let resource = Config::resource(ctx.servers());
        self.request(ctx, Step::Write, Value::Int(value), msg, vec![resource]);
    }

    /// Gives the lease up and releases the lock.
    fn release(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let cycle = self.cycle.as_mut().expect("a cycle");
        if cycle.until.take().is_some() {
            ctx.observe(LockObs::Released { lock: cycle.lock.clone() });
        }
        let op = LockOp::Release { lock: cycle.lock.clone(), token: cycle.token };
        let token = cycle.token;
        let to = if self.config.variant == Variant::Redlock {
            Config::service_servers(ctx.servers()).to_vec()
        } else {
            vec![self.service_server(ctx)]
        };
        self.request(ctx, Step::Release, Value::Int(token.0 as i64), op_msg(op), to);
    }

    fn end_cycle(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        self.cycle = None;
        self.pending = None;
        let pause = if self.next < self.script.len() { self.config.think } else { Duration::from_millis(500) };
        ctx.set_timer(pause, Timer::Think);
    }

    /// `redlock`: every server answered, or time ran out. An acquire holds
    /// if a majority granted it in time, for the TTL less the time taken
    /// and the drift allowance; otherwise it undoes its partial grants.
    fn redlock_decide(&mut self, ctx: &mut Ctx<'_, LockNode>, p: Pending) {
        if p.step == Step::Release {
            if p.answers.is_empty() {
                ctx.info(Value::Null);
            } else {
                ctx.ok(Value::Null);
            }
            self.end_cycle(ctx);
            return;
        }
        debug_assert_eq!(p.step, Step::Acquire);
        let granted = p.answers.iter().filter(|(_, r)| matches!(r, Reply::Granted { .. })).count();
        let drift = self.config.ttl / 100 + Duration::from_millis(2);
        let elapsed = ctx.mono_now().saturating_sub(p.sent_at);
        let token = Token(p.id);
        if granted >= crate::quorum::majority(p.to.len()) && elapsed + drift < self.config.ttl {
            ctx.ok(Value::Int(token.0 as i64));
            self.granted(ctx, token, p.sent_at.saturating_add(self.config.ttl - drift));
            return;
        }
        ctx.fail(Value::from("busy"));
        let cycle = self.cycle.as_ref().expect("a cycle");
        let undo = Msg::Lock { id: p.id, op: LockOp::Release { lock: cycle.lock.clone(), token } };
        for &server in &p.to {
            ctx.send(server, undo.clone());
        }
        self.busy(ctx);
    }
}

fn op_msg(op: LockOp) -> Msg {
    Msg::Lock { id: 0, op }
}

/// `msg` numbered `id`.
fn with_id(msg: Msg, id: u64) -> Msg {
    match msg {
        Msg::Lock { op, .. } => Msg::Lock { id, op },
        Msg::Read { key, token, .. } => Msg::Read { id, key, token },
        Msg::Write { key, value, token, .. } => Msg::Write { id, key, value, token },
        other => other,
    }
}

/// The server after `current`, round-robin.
fn following(servers: &[NodeId], current: NodeId) -> NodeId {
    let i = servers.iter().position(|&s| s == current).map_or(0, |i| (i + 1) % servers.len());
    servers[i]
}
