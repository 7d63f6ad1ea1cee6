//! xenstored in the agent: the store (`xenstore` crate) served over each domain's xenstore
//! ring (`pv_rings::XenstoreConnection`), plus a privileged local connection for the agent
//! itself. The builder writes a new domain's entries in the layout xl and xapi use
//! (`/local/domain/N/...` and `/vm/UUID/...`) and introduces it; its end releases it.
//!
//! The agent watches each domain's `control/feature-poweroff` (which Linux writes once its
//! xenbus is up) and logs it: proof, on the host console, that a guest reached the store.

use crate::foreign::SharedRing;
use crate::hypercall;
use crate::log::info;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pv_rings::{XenstoreConfig, XenstoreConnection};
use xen_abi::xs_wire::XS_WATCH_EVENT;
use xen_abi::DomId;
use xenstore::{Access, Config, ConnId, Message, Output, Perm, Store};

/// One introduced domain's ring.
struct Ring {
    domid: DomId,
    conn: ConnId,
    page: SharedRing,
    xs: XenstoreConnection,
    /// Our end of the domain's xenstore channel.
    local_port: hypercall::LocalPort,
}

/// What the builder knows about a new domain, for its store entries.
pub struct NewDomain<'a> {
    pub domid: DomId,
    pub name: &'a str,
    pub uuid: &'a str,
    pub memory_kib: u64,
    pub vcpus: u32,
    pub store_gfn: u64,
    pub store_port: u32,
    pub console_gfn: u64,
    pub console_port: u32,
}

pub struct Xenstored {
    store: Store,
    /// The agent's own (privileged) connection.
    tools: ConnId,
    rings: Vec<Ring>,
    /// `/vm/UUID` of each domain, removed with it.
    vm_paths: Vec<(DomId, String)>,
}

/// Token of the agent's watch on a domain's `control/feature-poweroff`.
const FEATURE_TOKEN: &[u8] = b"agent-feature-poweroff";

impl Xenstored {
    pub fn new() -> Xenstored {
        let mut store = Store::new(Config::default());
        let tools = store.connect(0);
        for path in ["/local", "/local/domain", "/vm"] {
            store.mkdir(tools, 0, path).expect("a fresh store takes its top directories");
        }
        Xenstored { store, tools, rings: Vec::new(), vm_paths: Vec::new() }
    }

    /// Writes `path` = `value` with permissions `perms` (creating parents).
    fn node(&mut self, path: &str, value: &str, perms: &[Perm]) -> Result<(), String> {
        self.store.write(self.tools, 0, path, value.as_bytes()).map_err(|e| format!("writing {path}: {e:?}"))?;
        self.store.set_perms(self.tools, 0, path, perms).map_err(|e| format!("permissions of {path}: {e:?}"))
    }

    /// Writes a new domain's entries and introduces it (maps its ring, binds its channel).
    pub fn add_domain(&mut self, d: &NewDomain<'_>) -> Result<(), String> {
        let n = d.domid;
        // Readable by the domain, owned by dom0 / owned by the domain (xl's roperm / rwperm).
        let ro = [Perm::new(0, Access::None), Perm::new(n, Access::Read)];
        let rw = [Perm::new(n, Access::None)];
        let dom = format!("/local/domain/{n}");
        let vm = format!("/vm/{}", d.uuid);
        self.node(&dom, "", &ro)?;
        self.node(&vm, "", &ro)?;
        self.vm_paths.push((n, vm.clone()));
        for (key, value) in [
            ("name", String::from(d.name)),
            ("domid", format!("{n}")),
            ("vm", vm.clone()),
            ("memory/static-max", format!("{}", d.memory_kib)),
            ("memory/target", format!("{}", d.memory_kib)),
            ("cpu/0/availability", String::from("online")),
            ("store/port", format!("{}", d.store_port)),
            ("store/ring-ref", format!("{}", d.store_gfn)),
            ("console/port", format!("{}", d.console_port)),
            ("console/ring-ref", format!("{}", d.console_gfn)),
            ("console/type", String::from("xenconsoled")),
            ("console/tty", String::new()),
            ("device", String::new()),
            ("control", String::new()),
        ] {
            self.node(&format!("{dom}/{key}"), &value, &ro)?;
        }
        for vcpu in 1..d.vcpus {
            self.node(&format!("{dom}/cpu/{vcpu}/availability"), "online", &ro)?;
        }
        for key in [
            "control/shutdown",
            "control/feature-poweroff",
            "control/feature-reboot",
            "control/feature-suspend",
            "control/sysrq",
            "data",
            "drivers",
            "feature",
            "attr",
            "error",
        ] {
            self.node(&format!("{dom}/{key}"), "", &rw)?;
        }
        self.node(&format!("{vm}/name"), d.name, &ro)?;
        self.node(&format!("{vm}/uuid"), d.uuid, &ro)?;
        self.store
            .watch(self.tools, &format!("{dom}/control/feature-poweroff"), FEATURE_TOKEN)
            .map_err(|e| format!("watching {dom}: {e:?}"))?;
        self.store.introduce_domain(n, d.store_gfn, d.store_port).map_err(|e| format!("introducing: {e:?}"))?;
        self.dispatch()
    }

    /// The domain ended: fire `@releaseDomain`, release it, remove its entries.
    pub fn remove_domain(&mut self, domid: DomId) {
        self.store.domain_shutdown(domid);
        let _ = self.store.release_domain(domid);
        let _ =
            self.store.unwatch(self.tools, &format!("/local/domain/{domid}/control/feature-poweroff"), FEATURE_TOKEN);
        let _ = self.store.rm(self.tools, 0, &format!("/local/domain/{domid}"));
        if let Some(i) = self.vm_paths.iter().position(|(d, _)| *d == domid) {
            let (_, vm) = self.vm_paths.swap_remove(i);
            let _ = self.store.rm(self.tools, 0, &vm);
        }
        if let Err(e) = self.dispatch() {
            info!("xenstored: releasing domain {domid}: {e}");
        }
    }

    /// Our ends of the rings' event channels, to wait on.
    pub fn ports(&self) -> impl Iterator<Item = u32> + '_ {
        self.rings.iter().map(|r| r.local_port.number())
    }

    /// Acts on what the store asked for.
    fn dispatch(&mut self) -> Result<(), String> {
        let mut outputs = self.store.take_outputs();
        let mut result = Ok(());
        while !outputs.is_empty() {
            for out in outputs {
                if let Err(e) = self.act(out) {
                    result = Err(e);
                }
            }
            outputs = self.store.take_outputs();
        }
        result
    }

    fn act(&mut self, out: Output) -> Result<(), String> {
        match out {
            Output::Send { conn, msg } if conn == self.tools => {
                self.tools_message(&msg);
                Ok(())
            }
            Output::Send { conn, msg } => match self.rings.iter_mut().find(|r| r.conn == conn) {
                Some(ring) => ring.xs.queue(msg.to_bytes()).map_err(|e| format!("domain {}: {e:?}", ring.domid)),
                None => Ok(()),
            },
            Output::Introduce { domid, conn, gfn, port } => {
                self.rings.retain(|r| r.domid != domid);
                let page = SharedRing::new(domid, gfn).map_err(|e| format!("mapping domain {domid}'s ring: {e}"))?;
                let local_port = hypercall::bind_interdomain(domid, port)
                    .map_err(|e| format!("binding domain {domid}'s xenstore channel: {e}"))?;
                let mut xs = XenstoreConnection::new(XenstoreConfig::default());
                xs.introduce(&page);
                self.rings.push(Ring { domid, conn, page, xs, local_port });
                Ok(())
            }
            Output::Release { domid, .. } => {
                self.rings.retain(|r| r.domid != domid);
                Ok(())
            }
            Output::Log(line) => {
                info!("xenstored: {line}");
                Ok(())
            }
        }
    }

    /// A watch event for the agent's own connection.
    fn tools_message(&mut self, msg: &Message) {
        if msg.type_ != XS_WATCH_EVENT {
            return;
        }
        let parts = msg.strings();
        let (Some(path), Some(token)) = (parts.first(), parts.get(1)) else { return };
        if *token != FEATURE_TOKEN {
            return;
        }
        let path = String::from_utf8_lossy(path).into_owned();
        if let Some(value) = self.store.value(&path).filter(|v| !v.is_empty()) {
            info!("xenstored: {path} = {}", String::from_utf8_lossy(value));
        }
    }

    /// Serves every ring: reads requests, answers them, writes replies and watch events,
    /// signals the domains that have something new.
    pub fn service(&mut self) {
        for i in 0..self.rings.len() {
            loop {
                let ring = &mut self.rings[i];
                if ring.xs.handle_reconnect(&ring.page) {
                    let conn = ring.conn;
                    self.store.reset_connection(conn);
                    continue;
                }
                match ring.xs.read_message(&ring.page) {
                    Ok(Some(bytes)) => {
                        let conn = ring.conn;
                        let outs = self.store.handle(conn, &bytes);
                        for out in outs {
                            if let Err(e) = self.act(out) {
                                info!("xenstored: {e}");
                            }
                        }
                        if let Err(e) = self.dispatch() {
                            info!("xenstored: {e}");
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        info!("xenstored: domain {}: {e}; connection stopped", ring.domid);
                        let conn = ring.conn;
                        self.store.reset_connection(conn);
                        break;
                    }
                }
            }
        }
        for ring in self.rings.iter_mut() {
            if ring.xs.has_output() {
                if let Err(e) = ring.xs.write_responses(&ring.page) {
                    info!("xenstored: domain {}: {e}", ring.domid);
                }
            }
            if ring.xs.take_notify() {
                let _ = hypercall::send(ring.local_port.number());
            }
        }
    }
}
