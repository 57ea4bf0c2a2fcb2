//! The Git behind the fake: every repository is a bare Git repository on disk, written
//! with Git's plumbing (`hash-object -w`, `mktree`, `commit-tree`, `merge-tree`,
//! `update-ref`), so each blob, tree and commit id the fake reports is a real object
//! id, and Argo CD can sync the repository through its `file://` URL.
//!
//! Writes go to Git first and take the id Git gives; the fake keeps what it wrote in
//! memory too (same ids), so reads, ETags and ancestry answers cost no process. A
//! write of content Git already holds (a blob or a folder's listing) costs none either.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A tree's files: path (with folders) -> content.
pub type Files = BTreeMap<String, String>;

/// Why a Git command failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("git {args}: {detail}")]
pub struct GitError {
    args: String,
    detail: String,
}

impl GitError {
    fn new(args: &[&str], detail: impl ToString) -> Self {
        GitError {
            args: args.join(" "),
            detail: detail.to_string(),
        }
    }
}

/// One bare repository and the objects the fake wrote into it.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Content -> blob id, and back.
    blob_ids: HashMap<String, String>,
    blobs: HashMap<String, String>,
    /// `mktree` input (one folder's listing) -> tree id.
    folders: HashMap<String, String>,
}

/// A folder being assembled: files (name -> blob id) and subfolders.
#[derive(Default)]
struct Folder {
    files: BTreeMap<String, String>,
    folders: BTreeMap<String, Folder>,
}

impl Store {
    /// Creates an empty bare repository at `dir` whose `HEAD` names `branch`.
    pub fn init(dir: PathBuf, branch: &str) -> Result<Self, GitError> {
        let path = dir.to_string_lossy().into_owned();
        let initial = format!("--initial-branch={branch}");
        run(None, &["init", "--bare", "--quiet", &initial, &path], None)?;
        Ok(Store {
            dir,
            blob_ids: HashMap::new(),
            blobs: HashMap::new(),
            folders: HashMap::new(),
        })
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn git(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, GitError> {
        run(Some(&self.dir), args, stdin)
    }

    /// The blob id of `content`, writing the blob if Git does not hold it yet.
    pub fn blob(&mut self, content: &str) -> Result<String, GitError> {
        if let Some(id) = self.blob_ids.get(content) {
            return Ok(id.clone());
        }
        let id = self
            .git(&["hash-object", "-w", "--stdin"], Some(content.as_bytes()))?
            .trim()
            .to_owned();
        self.blob_ids.insert(content.to_owned(), id.clone());
        self.blobs.insert(id.clone(), content.to_owned());
        Ok(id)
    }

    /// The blob id of content the fake wrote before, without writing.
    pub fn known_blob(&self, content: &str) -> Option<&str> {
        self.blob_ids.get(content).map(String::as_str)
    }

    /// Writes a tree for `files` (path with folders -> content); returns the root's id.
    pub fn tree(&mut self, files: &BTreeMap<String, String>) -> Result<String, GitError> {
        let mut root = Folder::default();
        for (path, content) in files {
            let blob = self.blob(content)?;
            let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let Some(name) = parts.pop() else {
                return Err(GitError::new(&["mktree"], format!("bad path {path:?}")));
            };
            let mut folder = &mut root;
            for part in parts {
                folder = folder.folders.entry(part.to_owned()).or_default();
            }
            folder.files.insert(name.to_owned(), blob);
        }
        self.folder(&root)
    }

    fn folder(&mut self, folder: &Folder) -> Result<String, GitError> {
        let mut listing = String::new();
        for (name, sub) in &folder.folders {
            let id = self.folder(sub)?;
            listing.push_str(&format!("040000 tree {id}\t{name}\0"));
        }
        for (name, blob) in &folder.files {
            listing.push_str(&format!("100644 blob {blob}\t{name}\0"));
        }
        if let Some(id) = self.folders.get(&listing) {
            return Ok(id.clone());
        }
        let id = self
            .git(&["mktree", "-z"], Some(listing.as_bytes()))?
            .trim()
            .to_owned();
        self.folders.insert(listing, id.clone());
        Ok(id)
    }

    /// Writes a commit of `tree` with `parents`, committed at `seconds` (Unix time).
    pub fn commit(
        &self,
        tree: &str,
        parents: &[String],
        message: &str,
        seconds: i64,
    ) -> Result<String, GitError> {
        let mut args = vec!["commit-tree", tree];
        for p in parents {
            args.extend(["-p", p.as_str()]);
        }
        args.extend(["-F", "-"]);
        let date = format!("{seconds} +0000");
        let out = Command::new("git")
            .args(&args)
            .current_dir(&self.dir)
            .envs(identity())
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                if let Some(mut input) = child.stdin.take() {
                    input.write_all(message.as_bytes())?;
                }
                child.wait_with_output()
            })
            .map_err(|e| GitError::new(&args, e))?;
        if !out.status.success() {
            return Err(GitError::new(&args, String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The tree of a three-way merge of commits `ours` and `theirs`, and the files it
    /// holds; `None` when they conflict.
    pub fn merge_tree(
        &mut self,
        ours: &str,
        theirs: &str,
    ) -> Result<Option<(String, Files)>, GitError> {
        let args = ["merge-tree", "--write-tree", "--no-messages", ours, theirs];
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .envs(identity())
            .output()
            .map_err(|e| GitError::new(&args, e))?;
        match out.status.code() {
            Some(0) => {}
            Some(1) => return Ok(None),
            _ => return Err(GitError::new(&args, String::from_utf8_lossy(&out.stderr))),
        }
        let tree = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let listing = self.git(&["ls-tree", "-r", "-z", &tree], None)?;
        let mut files = BTreeMap::new();
        for entry in listing.split('\0').filter(|e| !e.is_empty()) {
            // `<mode> blob <id>\t<path>`
            let (meta, path) = entry.split_once('\t').unwrap_or_default();
            let Some(id) = meta.split(' ').nth(2) else {
                continue;
            };
            let content = match self.blobs.get(id) {
                Some(c) => c.clone(),
                None => self.git(&["cat-file", "blob", id], None)?,
            };
            files.insert(path.to_owned(), content);
        }
        Ok(Some((tree, files)))
    }

    /// Points `refs/heads/{branch}` at `sha`.
    pub fn set_branch(&self, branch: &str, sha: &str) -> Result<(), GitError> {
        self.git(&["update-ref", &format!("refs/heads/{branch}"), sha], None)
            .map(drop)
    }

    /// Deletes `refs/heads/{branch}`.
    pub fn delete_branch(&self, branch: &str) -> Result<(), GitError> {
        self.git(&["update-ref", "-d", &format!("refs/heads/{branch}")], None)
            .map(drop)
    }
}

/// A fixed identity and no user or system configuration.
fn identity() -> [(&'static str, &'static str); 6] {
    [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_AUTHOR_NAME", "dev"),
        ("GIT_AUTHOR_EMAIL", "dev@example.com"),
        ("GIT_COMMITTER_NAME", "dev"),
        ("GIT_COMMITTER_EMAIL", "dev@example.com"),
    ]
}

/// Runs `git ARGS` (in `dir`, if given), feeding `stdin`; returns standard output.
fn run(dir: Option<&Path>, args: &[&str], stdin: Option<&[u8]>) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .envs(identity())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .spawn()
        .and_then(|mut child| {
            if let (Some(data), Some(mut input)) = (stdin, child.stdin.take()) {
                input.write_all(data)?;
            }
            child.wait_with_output()
        })
        .map_err(|e| GitError::new(args, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(GitError::new(args, String::from_utf8_lossy(&out.stderr)))
    }
}

/// A folder for the fake's repositories, named after this process so a later process
/// can remove what one that is gone left behind (the shared fake lives in a static,
/// which is never dropped).
pub fn root() -> std::io::Result<tempfile::TempDir> {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("baton-fake-github-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("baton-fake-github-{}-", std::process::id()))
        .tempdir()
}
