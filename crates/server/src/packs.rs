//! What a server deploys at start: every valid pack under the given folders, and the catalogue
//! (processes and role names) the API shows.
//!
//! When two packs define a process with the same id, the pack whose folder sorts last wins
//! (e.g. `processes/standard` over `processes/examples`) and the other is reported; choosing
//! before deploying keeps a restart from flipping the current version back and forth.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use model::{FsFiles, Process};

use crate::state::Catalogue;

/// The packs found and what was left out.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The processes to deploy.
    pub processes: Vec<Arc<Process>>,
    /// Their catalogue.
    pub catalogue: Catalogue,
    /// The packs loaded: (pack id, folder).
    pub packs: Vec<(String, PathBuf)>,
    /// What was left out, and why (invalid packs, processes defined twice).
    pub problems: Vec<String>,
}

/// Loads every pack under `roots`.
pub fn load(roots: &[PathBuf], options: &model::Options) -> Loaded {
    let mut dirs: Vec<PathBuf> = roots.iter().flat_map(|r| model::find_packs(r, &FsFiles)).collect();
    dirs.sort();
    dirs.dedup();
    let mut out = Loaded::default();
    // The engine's own roles, whatever the packs say: accounts of external task workers.
    let worker = model::Label { zh: Some("外部任務程序".into()), en: Some("External task worker".into()) };
    out.catalogue.add_roles([(&crate::routes::external::WORKER_ROLE.to_string(), &worker)]);
    let mut chosen: BTreeMap<String, (PathBuf, Arc<Process>)> = BTreeMap::new();
    for dir in dirs {
        let pack = model::load_pack(&dir, &FsFiles, options);
        if pack.has_errors() {
            let n = pack.diagnostics.iter().filter(|d| d.is_error()).count();
            out.problems.push(format!(
                "{}: not deployed, {n} error(s); run `sopflow validate {}`",
                dir.display(),
                dir.display()
            ));
            continue;
        }
        if let Some(m) = &pack.manifest {
            out.catalogue.add_roles(m.roles.iter());
        }
        for p in pack.processes {
            if let Some((other, _)) = chosen.get(&p.id) {
                out.problems.push(format!(
                    "process `{}` is defined in {} and {}; the one in {} is deployed",
                    p.id,
                    other.display(),
                    dir.display(),
                    dir.display()
                ));
            }
            chosen.insert(p.id.clone(), (dir.clone(), p));
        }
        if let Some(m) = &pack.manifest {
            out.packs.push((m.pack.clone(), dir));
        }
    }
    for (_, (_, p)) in chosen {
        out.catalogue.add_process(Arc::clone(&p));
        out.processes.push(p);
    }
    out
}
