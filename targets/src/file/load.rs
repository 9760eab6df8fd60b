//! Reading and checking a target file: TOML into [`RawFile`], then every rule the types
//! do not express (one program, known placeholders, known models, a binary that exists...),
//! each refusal placed at its line and field.

use std::collections::BTreeMap;
use std::path::Path;

use faultline_nemesis::Family;
use toml::Spanned;

use super::place::{locate, port, template, templates, Placer, MAX_NODES};
use super::raw::RawFile;
use super::template::{Template, ADAPTER_PLACEHOLDERS, NODE_PLACEHOLDERS, PEER_PLACEHOLDERS};
use super::{
    Claim, ClientKind, FaultSwitch, FileError, Leader, OptionSpec, Readiness, TargetFile,
    FORMAT_VERSION,
};
use crate::target::{Program, SwitchableFault};

/// Parses and checks `text` as the file at `path`.
pub(super) fn parse(
    path: &Path,
    text: &str,
    known_models: &[&str],
) -> Result<TargetFile, FileError> {
    let p = Placer { path, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| p.toml(&e))?;
    let dir = path
        .parent()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .unwrap_or(Path::new("."));
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());

    if let Some(v) = &raw.version {
        if *v.get_ref() != FORMAT_VERSION {
            return Err(p.at(
                v.span(),
                "version",
                format!(
                    "this faultline reads target files of version {FORMAT_VERSION}, not {}",
                    v.get_ref()
                ),
            ));
        }
    }
    let name = raw.name.get_ref().clone();
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if !valid_name {
        return Err(p.at(
            raw.name.span(),
            "name",
            format!("{name:?}: a name is 1 to 64 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit (it names the run's store folder)"),
        ));
    }

    // Options first: templates and claims refer to them.
    let mut options = BTreeMap::new();
    for (k, o) in &raw.options {
        let field = format!("options.{k}");
        let o_ref = o.get_ref();
        if o_ref.values.is_empty() {
            return Err(p.at(
                o.span(),
                &field,
                "an option needs at least one value in values",
            ));
        }
        if !o_ref.values.contains(o_ref.default.get_ref()) {
            return Err(p.at(
                o_ref.default.span(),
                &format!("{field}.default"),
                format!(
                    "default {:?} is not one of values ({})",
                    o_ref.default.get_ref(),
                    o_ref.values.join(", ")
                ),
            ));
        }
        options.insert(
            k.clone(),
            OptionSpec {
                values: o_ref.values.clone(),
                default: o_ref.default.get_ref().clone(),
                description: o_ref.description.clone(),
            },
        );
    }
    let option_names: Vec<&str> = options.keys().map(String::as_str).collect();

    // The program.
    let prog = raw.program.get_ref();
    let program = match (&prog.binary, &prog.image) {
        (Some(b), None) => {
            let file = dir.join(b.get_ref());
            if !file.is_file() {
                return Err(p.at(
                    b.span(),
                    "program.binary",
                    format!(
                        "no such file: {}{}",
                        file.display(),
                        prog.hint
                            .as_deref()
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default()
                    ),
                ));
            }
            let file = file.canonicalize().unwrap_or(file);
            Program::HostBinary {
                path: file,
                hint: prog
                    .hint
                    .clone()
                    .unwrap_or_else(|| format!("fix program.binary in {}", path.display())),
            }
        }
        (None, Some(i)) => {
            if i.get_ref().trim().is_empty() {
                return Err(p.at(i.span(), "program.image", "the image reference is empty"));
            }
            Program::Image {
                reference: i.get_ref().clone(),
            }
        }
        _ => {
            return Err(p.at(
                raw.program.span(),
                "program",
                "give exactly one of binary = \"PATH\" (a host program, bind-mounted into each node) or image = \"NAME:TAG\" (a local image used as it is)",
            ))
        }
    };

    // The node.
    let node = &raw.node;
    if node.command.get_ref().is_empty() && matches!(program, Program::Image { .. }) {
        return Err(p.at(
            node.command.span(),
            "node.command",
            "an image target needs the whole command of its nodes",
        ));
    }
    let command = templates(
        &p,
        node.command.get_ref(),
        "node.command",
        NODE_PLACEHOLDERS,
        &option_names,
    )?;
    let mut env = Vec::new();
    for (k, v) in &node.env {
        env.push((
            k.clone(),
            template(
                &p,
                v,
                &format!("node.env.{k}"),
                NODE_PLACEHOLDERS,
                &option_names,
            )?,
        ));
    }
    let node_port = port(&p, &node.port, "node.port")?;
    let count = |v: &Option<Spanned<i64>>, field: &str, default: i64| -> Result<usize, FileError> {
        match v {
            None => Ok(default as usize),
            Some(n) if (1..=MAX_NODES).contains(n.get_ref()) => Ok(*n.get_ref() as usize),
            Some(n) => Err(p.at(
                n.span(),
                field,
                format!("must be from 1 to {MAX_NODES}, got {}", n.get_ref()),
            )),
        }
    };
    let min_nodes = count(&node.min_nodes, "node.min_nodes", 1)?;
    let default_nodes = count(
        &node.default_nodes,
        "node.default_nodes",
        3.max(min_nodes as i64),
    )?;
    if default_nodes < min_nodes {
        let span = node
            .default_nodes
            .as_ref()
            .map(Spanned::span)
            .unwrap_or(0..0);
        return Err(p.at(
            span,
            "node.default_nodes",
            format!("{default_nodes} is below node.min_nodes {min_nodes}"),
        ));
    }
    let peer_format = match &node.peer_format {
        Some(f) => template(&p, f, "node.peer_format", PEER_PLACEHOLDERS, &[])?,
        None => Template::parse("{ip}:{port}", PEER_PLACEHOLDERS, &[])
            .map_err(|m| p.at(0..0, "node.peer_format", m))?,
    };
    let peer_separator = node.peer_separator.clone().unwrap_or_else(|| ",".into());

    // Readiness: exactly one way.
    let r = raw.readiness.get_ref();
    let readiness = match (&r.http, &r.tcp, &r.command) {
        (Some(h), None, None) => {
            if !h.get_ref().starts_with('/') {
                return Err(p.at(h.span(), "readiness.http", "an HTTP path starts with /"));
            }
            Readiness::Http(h.get_ref().clone())
        }
        (None, Some(t), None) => Readiness::Tcp(port(&p, t, "readiness.tcp")?),
        (None, None, Some(c)) => {
            if c.get_ref().is_empty() {
                return Err(p.at(c.span(), "readiness.command", "the command is empty"));
            }
            Readiness::Command(templates(
                &p,
                c.get_ref(),
                "readiness.command",
                NODE_PLACEHOLDERS,
                &option_names,
            )?)
        }
        _ => {
            return Err(p.at(
                raw.readiness.span(),
                "readiness",
                "give exactly one of http = \"/PATH\" (answers 200 when ready), tcp = PORT (accepts connections) or command = [...] (run on the host, exits 0 when ready)",
            ))
        }
    };

    // The client.
    let c = raw.client.get_ref();
    let client_port = match &c.port {
        Some(v) => port(&p, v, "client.port")?,
        None => node_port,
    };
    let client = match c.kind.get_ref().as_str() {
        "http-kv" => {
            if let Some(cmd) = &c.command {
                return Err(p.at(
                    cmd.span(),
                    "client.command",
                    "only an adapter client has a command (type = \"adapter\")",
                ));
            }
            ClientKind::HttpKv
        }
        "adapter" => {
            let Some(cmd) = &c.command else {
                return Err(p.at(
                    raw.client.span(),
                    "client.command",
                    "an adapter client needs command = [\"PROGRAM\", ARGS...]",
                ));
            };
            let Some(first) = cmd.get_ref().first() else {
                return Err(p.at(cmd.span(), "client.command", "the command is empty"));
            };
            let argv = templates(
                &p,
                cmd.get_ref(),
                "client.command",
                ADAPTER_PLACEHOLDERS,
                &option_names,
            )?;
            // The program itself must exist (its arguments may be files made later).
            if first.get_ref().contains('{') {
                return Err(p.at(
                    first.span(),
                    "client.command",
                    "the adapter's program cannot be a placeholder",
                ));
            }
            if locate(&dir, first.get_ref()).is_none() {
                return Err(p.at(
                    first.span(),
                    "client.command",
                    format!(
                        "adapter program {:?} not found ({})",
                        first.get_ref(),
                        if first.get_ref().contains('/') {
                            format!("looked in {}", dir.display())
                        } else {
                            "looked in PATH".to_string()
                        }
                    ),
                ));
            }
            // A script given by path after an interpreter must exist too.
            for arg in cmd.get_ref().iter().skip(1) {
                let a = arg.get_ref();
                let script = a.strip_prefix("{target_dir}/");
                if let Some(rel) = script {
                    if !dir.join(rel).is_file() {
                        return Err(p.at(
                            arg.span(),
                            "client.command",
                            format!("no such file: {}", dir.join(rel).display()),
                        ));
                    }
                }
            }
            ClientKind::Adapter(argv)
        }
        other => {
            return Err(p.at(
                c.kind.span(),
                "client.type",
                format!("unknown client type {other:?} (http-kv or adapter)"),
            ))
        }
    };
    let cas = c.cas.unwrap_or(true);

    // Leader.
    let leader = match &raw.leader {
        None => Leader::None,
        Some(l) => match (&l.get_ref().http, l.get_ref().adapter) {
            (Some(h), None | Some(false)) => {
                if !matches!(client, ClientKind::HttpKv) {
                    return Err(p.at(
                        h.span(),
                        "leader.http",
                        "leader.http needs the http-kv client; an adapter answers f = \"role\" (leader.adapter = true)",
                    ));
                }
                Leader::Http(h.get_ref().clone())
            }
            (None, Some(true)) => {
                if !matches!(client, ClientKind::Adapter(_)) {
                    return Err(p.at(
                        l.span(),
                        "leader.adapter",
                        "leader.adapter needs client.type = \"adapter\"",
                    ));
                }
                Leader::Adapter
            }
            (None, None | Some(false)) => Leader::None,
            _ => {
                return Err(p.at(
                    l.span(),
                    "leader",
                    "give one of http = \"/PATH\" or adapter = true",
                ))
            }
        },
    };

    // Clock faults.
    let clock = match (&raw.clock, &program) {
        (Some(c), _) if c.faults => Ok(()),
        (Some(c), _) => Err(c
            .reason
            .clone()
            .unwrap_or_else(|| format!("{} says clock faults do not reach it", path.display()))),
        (None, Program::Image { .. }) => Err("an image target's program is not known to load libfaketime: say [clock] faults = true in the target file if it does".to_string()),
        (None, _) => Ok(()),
    };

    // Claims.
    let mut claims = Vec::new();
    for (i, c) in raw.claims.get_ref().iter().enumerate() {
        let field = format!("claims[{i}]");
        let cr = c.get_ref();
        let mut models = Vec::new();
        for m in cr.models.get_ref() {
            if !known_models.contains(&m.get_ref().as_str()) {
                return Err(p.at(
                    m.span(),
                    &format!("{field}.models"),
                    format!(
                        "unknown model {:?} (known: {})",
                        m.get_ref(),
                        known_models.join(", ")
                    ),
                ));
            }
            models.push(m.get_ref().clone());
        }
        let mut when = Vec::new();
        if let Some(w) = &cr.when {
            for cond in w
                .get_ref()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let bad = |m: String| p.at(w.span(), &format!("{field}.when"), m);
                let Some((k, v)) = cond.split_once('=') else {
                    return Err(bad(format!("{cond:?}: expected OPTION=VALUE")));
                };
                let (k, v) = (k.trim(), v.trim());
                let Some(o) = options.get(k) else {
                    return Err(bad(format!(
                        "no option {k:?} is declared ([options.{k}] values = [...], default = ...)"
                    )));
                };
                if !o.values.iter().any(|x| x == v) {
                    return Err(bad(format!(
                        "{k}={v}: not one of the option's values ({})",
                        o.values.join(", ")
                    )));
                }
                when.push((k.to_string(), v.to_string()));
            }
        }
        claims.push(Claim {
            when,
            models,
            reason: cr.reason.clone(),
        });
    }
    if !claims.iter().any(|c| c.when.is_empty()) {
        return Err(p.at(
            raw.claims.span(),
            "claims",
            "one [[claims]] entry must have no `when`: the claims under the default options",
        ));
    }

    // Planted faults.
    let mut faults = Vec::new();
    let mut switches = BTreeMap::new();
    for (i, f) in raw.faults.iter().enumerate() {
        let field = format!("faults[{i}]");
        let fr = f.get_ref();
        let fname = fr.name.get_ref();
        if fname.is_empty() || switches.contains_key(fname) {
            return Err(p.at(
                fr.name.span(),
                &format!("{field}.name"),
                format!("{fname:?}: a fault needs a name of its own"),
            ));
        }
        for fam in fr.exposed_by.get_ref() {
            if let Err(e) = fam.get_ref().parse::<Family>() {
                return Err(p.at(fam.span(), &format!("{field}.exposed_by"), e.to_string()));
            }
        }
        if fr.args.is_empty() && fr.env.is_empty() {
            return Err(p.at(
                f.span(),
                &field,
                "a fault is switched on through the node's command line or environment: give args = [...] or env = {...}",
            ));
        }
        let args = templates(
            &p,
            &fr.args,
            &format!("{field}.args"),
            NODE_PLACEHOLDERS,
            &option_names,
        )?;
        let mut fenv = Vec::new();
        for (k, v) in &fr.env {
            fenv.push((
                k.clone(),
                template(
                    &p,
                    v,
                    &format!("{field}.env.{k}"),
                    NODE_PLACEHOLDERS,
                    &option_names,
                )?,
            ));
        }
        faults.push(SwitchableFault {
            name: fname.clone(),
            description: fr.description.clone(),
            exposed_by: fr
                .exposed_by
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            exposure: crate::target::Exposure::default(),
            txn_only: false,
        });
        switches.insert(fname.clone(), FaultSwitch { args, env: fenv });
    }

    Ok(TargetFile {
        path: path.to_path_buf(),
        dir,
        description: raw
            .description
            .clone()
            .unwrap_or_else(|| format!("described by {}", path.display())),
        name,
        program,
        command,
        env,
        node_port,
        client_port,
        min_nodes,
        default_nodes,
        peer_format,
        peer_separator,
        readiness,
        leader,
        clock,
        client,
        cas,
        claims,
        options,
        faults,
        switches,
    })
}
