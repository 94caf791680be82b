//! A SQLite VFS that simulates power loss: after a cut, only what was synced
//! survives.
//!
//! [`PowerCut`] wraps SQLite's `unix` VFS. The real files play the page
//! cache (every read sees every write); beside them the shim keeps, for
//! each path SQLite opens by name, the file's durable image (what the disk
//! holds) and the changes made since the file was last synced. When the
//! power goes off, every later open, read, write, sync, truncation,
//! deletion and existence check fails (`SQLITE_IOERR`, `SQLITE_CANTOPEN`),
//! so nothing more is written, synced or acknowledged; once every
//! connection is closed, [`PowerCut::power_on`] rewrites each file as the
//! disk would hold it, and the database can be opened again through the
//! plain `unix` VFS, as a restarted machine would.
//!
//! The model, per path:
//! - A write, a truncation, a creation and a deletion are volatile until
//!   the file's next `xSync` (whatever its flags), which makes the file's
//!   contents, size and directory entry durable together. SQLite's unix VFS
//!   syncs the directory at the first sync of a new WAL or rollback
//!   journal, so this matches it there; for a new main database file it does
//!   not, and the model is lenient: create the database before arming a cut.
//! - `xDelete` with `syncDir` set makes the deletion durable at once; without
//!   it the deletion is volatile like any other change.
//! - At the cut, [`Survivors::None`] keeps no volatile change: each file is
//!   back to its last synced contents and size, a file never synced does
//!   not exist, an unsynced deletion is undone. [`Survivors::Random`] keeps
//!   each volatile change or drops it, independently, from a seed: a disk
//!   whose cache wrote some of them back, in any order, then lost power. A
//!   kept write to a file whose creation was lost goes nowhere, and a file
//!   extended by a kept write past a lost one holds zeros between them,
//!   which SQLite allows for ("new file space originally contains garbage").
//! - The `-shm` wal-index is shared memory, not storage: it is passed
//!   through untracked, and removed at the cut.
//! - A file the shim first meets on disk is taken as durable as found.
//!
//! Not modelled: torn writes (here a write survives whole or not at all; a
//! real disk may keep part of one, which the WAL's frame checksums are
//! there to catch, while `SQLITE_IOCAP_POWERSAFE_OVERWRITE`, reported by
//! the unix VFS, only promises that bytes outside a write are not
//! damaged), bit rot, a disk that acknowledges a sync it did not do (no
//! program can defend against that), a sync of one file making another
//! durable, temporary files (unnamed or delete-on-close: passed through
//! untracked), and files written outside SQLite. The shim never calls the
//! real `fsync`: its own durable images are the disk, and the files under
//! test are thrown away.

use rusqlite::ffi;
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io::ErrorKind;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The name the shim is registered under.
pub const VFS_NAME: &CStr = c"power-cut";

/// Which volatile changes a cut lets reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Survivors {
    /// None: every file is as it was last synced.
    #[default]
    None,
    /// Each change independently, with probability 1/2, from this seed.
    Random { seed: u64 },
}

/// What [`PowerCut::power_on`] found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    pub files: usize,
    pub changes_kept: usize,
    pub changes_lost: usize,
}

/// The power-cut VFS: one per process, registered on first use.
pub struct PowerCut {
    vfs: *mut ffi::sqlite3_vfs,
    unix: *mut ffi::sqlite3_vfs,
    disk: Mutex<Disk>,
    /// Set, under `disk`'s lock, when the power goes off; read without it.
    off: AtomicBool,
}

// SAFETY: the two VFS pointers are SQLite's registered, never-freed VFS
// objects, which SQLite itself lets any thread use; the mutable state is
// behind the mutex and the atomic.
unsafe impl Send for PowerCut {}
unsafe impl Sync for PowerCut {}

static POWER_CUT: OnceLock<PowerCut> = OnceLock::new();

fn power_cut() -> &'static PowerCut {
    POWER_CUT
        .get()
        .expect("the VFS is registered only after POWER_CUT is set")
}

impl PowerCut {
    /// Registers the shim (not as the default VFS) on the first call.
    pub fn install() -> &'static PowerCut {
        POWER_CUT.get_or_init(|| {
            // SAFETY: sqlite3_vfs_find initializes SQLite and returns a VFS
            // that lives as long as the process.
            let unix = unsafe { ffi::sqlite3_vfs_find(c"unix".as_ptr()) };
            assert!(!unix.is_null(), "this SQLite has no unix VFS");
            // SAFETY: `unix` is a valid VFS; the shim's own VFS object is
            // leaked, because SQLite keeps a pointer to it once registered.
            let vfs = unsafe {
                let unix = &*unix;
                Box::into_raw(Box::new(ffi::sqlite3_vfs {
                    iVersion: 2,
                    szOsFile: (REAL_FILE_OFFSET + unix.szOsFile as usize) as c_int,
                    mxPathname: unix.mxPathname,
                    pNext: ptr::null_mut(),
                    zName: VFS_NAME.as_ptr(),
                    pAppData: ptr::null_mut(),
                    xOpen: Some(vfs_open),
                    xDelete: Some(vfs_delete),
                    xAccess: Some(vfs_access),
                    xFullPathname: Some(vfs_full_pathname),
                    // unix's own: none of these looks at the VFS it is called through.
                    xDlOpen: unix.xDlOpen,
                    xDlError: unix.xDlError,
                    xDlSym: unix.xDlSym,
                    xDlClose: unix.xDlClose,
                    xRandomness: unix.xRandomness,
                    xSleep: unix.xSleep,
                    xCurrentTime: unix.xCurrentTime,
                    xGetLastError: unix.xGetLastError,
                    xCurrentTimeInt64: unix.xCurrentTimeInt64,
                    xSetSystemCall: None,
                    xGetSystemCall: None,
                    xNextSystemCall: None,
                }))
            };
            // SAFETY: the VFS object is leaked, so it outlives its
            // registration. Its callbacks find this `PowerCut` through
            // POWER_CUT, set before any connection can open through it.
            let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
            assert_eq!(rc, ffi::SQLITE_OK, "registering the power-cut VFS");
            PowerCut {
                vfs,
                unix,
                disk: Mutex::new(Disk::default()),
                off: AtomicBool::new(false),
            }
        })
    }

    /// Serializes the tests of a process: the shim and SQLite's default VFS
    /// are process-wide, so a test that arms a cut holds this throughout.
    pub fn exclusive() -> MutexGuard<'static, ()> {
        static EXCLUSIVE: Mutex<()> = Mutex::new(());
        // A test that failed while holding it left nothing the next one trips on
        // that `arm` does not check.
        EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the shim SQLite's default VFS: every connection this process
    /// opens without naming a VFS goes through it.
    pub fn make_default(&self) {
        // SAFETY: re-registering a registered VFS only moves it to the head.
        let rc = unsafe { ffi::sqlite3_vfs_register(self.vfs, 1) };
        assert_eq!(rc, ffi::SQLITE_OK);
    }

    /// Makes the plain unix VFS the default again.
    pub fn make_unix_default(&self) {
        // SAFETY: as in `make_default`.
        let rc = unsafe { ffi::sqlite3_vfs_register(self.unix, 1) };
        assert_eq!(rc, ffi::SQLITE_OK);
    }

    /// Turns the power on with a cut due: the `changes`-th change from now
    /// (a write, truncation, sync, creation or deletion) finds the power off
    /// and fails. Counting changes, not time, lets a seed replay the cut at
    /// the same point of the I/O stream.
    pub fn arm(&self, changes: u64, survivors: Survivors) {
        assert!(changes > 0, "a cut is due at the first change or later");
        let mut disk = self.lock();
        assert!(
            !self.off.load(Ordering::SeqCst),
            "the power is off: call power_on first"
        );
        disk.changes = 0;
        disk.cut_at = Some(changes);
        disk.survivors = survivors;
    }

    /// Cuts the power now, if it is not off already.
    pub fn cut(&self) {
        let _disk = self.lock();
        self.off.store(true, Ordering::SeqCst);
    }

    pub fn is_off(&self) -> bool {
        self.off.load(Ordering::SeqCst)
    }

    /// Changes counted since [`PowerCut::arm`].
    pub fn changes(&self) -> u64 {
        self.lock().changes
    }

    /// Brings the power back: rewrites every file the shim saw as the disk
    /// holds it after the cut, and forgets them. Every file opened through
    /// the shim must be closed (drop every connection first). Panics if the
    /// shim's record of a file disagrees with the file: a change that
    /// bypassed it would make the simulation unsound.
    pub fn power_on(&self) -> Restored {
        let mut disk = self.lock();
        assert!(self.off.load(Ordering::SeqCst), "the power is still on");
        assert_eq!(
            disk.open_files, 0,
            "files are still open through the shim: close every connection before power_on"
        );
        let mut random = match disk.survivors {
            Survivors::None => None,
            Survivors::Random { seed } => Some(SplitMix64::new(seed)),
        };
        let mut restored = Restored::default();
        // In path order, so that a seed draws the same survivors each run.
        let mut files: Vec<(String, FileHistory)> = disk.files.drain().collect();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, history) in files {
            let live = match std::fs::read(&path) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => panic!("cannot read {path}: {e}"),
            };
            let mut all = history.durable.clone();
            for change in &history.volatile {
                change.apply(&mut all);
            }
            assert!(
                all == live,
                "{path} holds other bytes than the shim recorded: a change bypassed it"
            );
            let mut image = history.durable;
            for change in &history.volatile {
                let kept = random.as_mut().is_some_and(|r| r.next_u64() & 1 == 1);
                if kept {
                    change.apply(&mut image);
                    restored.changes_kept += 1;
                } else {
                    restored.changes_lost += 1;
                }
            }
            match image {
                Some(bytes) => std::fs::write(&path, bytes),
                None => std::fs::remove_file(&path).or_else(|e| match e.kind() {
                    ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                }),
            }
            .unwrap_or_else(|e| panic!("cannot restore {path}: {e}"));
            restored.files += 1;
        }
        for path in disk.shm_paths.drain() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => panic!("cannot remove {path}: {e}"),
            }
        }
        disk.cut_at = None;
        disk.changes = 0;
        self.off.store(false, Ordering::SeqCst);
        restored
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A panic while the lock is held leaves nothing half-done that a
        // later caller could trip on, so a poisoned lock is still usable.
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one change; false when the power is off, or goes off now.
    fn begin_change(&self, disk: &mut Disk) -> bool {
        if self.off.load(Ordering::SeqCst) {
            return false;
        }
        disk.changes += 1;
        if disk.cut_at.is_some_and(|at| disk.changes >= at) {
            self.off.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// The simulated disk.
#[derive(Default)]
struct Disk {
    files: HashMap<String, FileHistory>,
    /// Wal-index files next to the main databases opened: removed at the cut.
    shm_paths: HashSet<String>,
    open_files: usize,
    changes: u64,
    cut_at: Option<u64>,
    survivors: Survivors,
}

impl Disk {
    /// The history of `path`, starting from the file as found on disk.
    fn history(&mut self, path: &str) -> std::io::Result<&mut FileHistory> {
        if !self.files.contains_key(path) {
            let durable = match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            self.files.insert(
                path.to_owned(),
                FileHistory {
                    durable,
                    volatile: Vec::new(),
                },
            );
        }
        Ok(self.files.get_mut(path).expect("inserted above"))
    }
}

/// One path: its durable image and the changes since.
struct FileHistory {
    /// None: the disk holds no such file.
    durable: Option<Vec<u8>>,
    volatile: Vec<Change>,
}

impl FileHistory {
    fn sync(&mut self) {
        for change in self.volatile.drain(..) {
            change.apply(&mut self.durable);
        }
    }
}

enum Change {
    Create,
    Write { offset: usize, bytes: Vec<u8> },
    Truncate { size: usize },
    Delete,
}

impl Change {
    fn apply(&self, image: &mut Option<Vec<u8>>) {
        match self {
            Change::Create => *image = Some(Vec::new()),
            Change::Delete => *image = None,
            Change::Truncate { size } => {
                if let Some(file) = image {
                    file.resize(*size, 0);
                }
            }
            Change::Write { offset, bytes } => {
                if let Some(file) = image {
                    let end = offset + bytes.len();
                    if file.len() < end {
                        file.resize(end, 0);
                    }
                    file[*offset..end].copy_from_slice(bytes);
                }
            }
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): a seed replays the same sequence.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high` (modulo bias is irrelevant at test ranges).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}

/// The shim's file: what SQLite holds, with unix's file after it in the
/// same allocation (`szOsFile` covers both).
#[repr(C)]
struct ShimFile {
    /// First, so that SQLite's `sqlite3_file*` is a `ShimFile*`.
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The path whose history this file's changes go to; None for
    /// temporary files, which are not tracked.
    path: Option<String>,
}

const REAL_FILE_OFFSET: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

/// The shim's file and unix's file with its methods.
///
/// # Safety
/// `file` was opened by `vfs_open` and not yet closed.
unsafe fn parts<'a>(
    file: *mut ffi::sqlite3_file,
) -> (
    &'a ShimFile,
    *mut ffi::sqlite3_file,
    &'a ffi::sqlite3_io_methods,
) {
    let shim = &*(file as *const ShimFile);
    (shim, shim.real, &*(*shim.real).pMethods)
}

/// # Safety
/// `name` is null or a NUL-terminated string, as SQLite passes file names.
unsafe fn path_of(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    CStr::from_ptr(name).to_str().ok().map(str::to_owned)
}

unsafe extern "C" fn vfs_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let power_cut = power_cut();
    // Until it succeeds, SQLite must see no methods to call xClose on.
    (*file).pMethods = ptr::null();
    let tracked = if flags & ffi::SQLITE_OPEN_DELETEONCLOSE == 0 {
        path_of(name)
    } else {
        None
    };
    let mut disk = power_cut.lock();
    if power_cut.is_off() {
        return ffi::SQLITE_CANTOPEN;
    }
    let mut created = false;
    if let Some(path) = &tracked {
        match disk.history(path) {
            Ok(_) => {}
            Err(_) => return ffi::SQLITE_CANTOPEN,
        }
        let exists = std::path::Path::new(path).exists();
        if !exists && flags & ffi::SQLITE_OPEN_CREATE != 0 {
            if !power_cut.begin_change(&mut disk) {
                return ffi::SQLITE_CANTOPEN;
            }
            created = true;
        }
    }
    let real = (file as *mut u8).add(REAL_FILE_OFFSET) as *mut ffi::sqlite3_file;
    let unix = &*power_cut.unix;
    let rc = (unix.xOpen.expect("unix has xOpen"))(power_cut.unix, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if let Some(path) = &tracked {
        if created {
            let history = disk.history(path).expect("read above");
            history.volatile.push(Change::Create);
        }
        if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
            disk.shm_paths.insert(format!("{path}-shm"));
        }
    }
    disk.open_files += 1;
    ptr::write(
        file as *mut ShimFile,
        ShimFile {
            base: ffi::sqlite3_file {
                pMethods: &SHIM_METHODS,
            },
            real,
            path: tracked,
        },
    );
    ffi::SQLITE_OK
}

unsafe extern "C" fn vfs_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let power_cut = power_cut();
    let Some(path) = path_of(name) else {
        return ffi::SQLITE_IOERR_DELETE;
    };
    let mut disk = power_cut.lock();
    if !power_cut.begin_change(&mut disk) {
        return ffi::SQLITE_IOERR_DELETE;
    }
    if disk.history(&path).is_err() {
        return ffi::SQLITE_IOERR_DELETE;
    }
    let unix = &*power_cut.unix;
    // The directory sync is the model's, not the real disk's.
    let rc = (unix.xDelete.expect("unix has xDelete"))(power_cut.unix, name, 0);
    if rc == ffi::SQLITE_OK {
        let history = disk.history(&path).expect("read above");
        if sync_dir != 0 {
            history.volatile.clear();
            history.durable = None;
        } else {
            history.volatile.push(Change::Delete);
        }
    }
    rc
}

unsafe extern "C" fn vfs_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let power_cut = power_cut();
    if power_cut.is_off() {
        return ffi::SQLITE_IOERR_ACCESS;
    }
    let unix = &*power_cut.unix;
    (unix.xAccess.expect("unix has xAccess"))(power_cut.unix, name, flags, out)
}

unsafe extern "C" fn vfs_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    out_size: c_int,
    out: *mut c_char,
) -> c_int {
    let power_cut = power_cut();
    let unix = &*power_cut.unix;
    (unix.xFullPathname.expect("unix has xFullPathname"))(power_cut.unix, name, out_size, out)
}

static SHIM_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(file_close),
    xRead: Some(file_read),
    xWrite: Some(file_write),
    xTruncate: Some(file_truncate),
    xSync: Some(file_sync),
    xFileSize: Some(file_size),
    xLock: Some(file_lock),
    xUnlock: Some(file_unlock),
    xCheckReservedLock: Some(file_check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(file_sector_size),
    xDeviceCharacteristics: Some(file_device_characteristics),
    xShmMap: Some(file_shm_map),
    xShmLock: Some(file_shm_lock),
    xShmBarrier: Some(file_shm_barrier),
    xShmUnmap: Some(file_shm_unmap),
    xFetch: Some(file_fetch),
    xUnfetch: Some(file_unfetch),
};

/// Closes unix's file whatever the power: a process's files close when it dies.
unsafe extern "C" fn file_close(file: *mut ffi::sqlite3_file) -> c_int {
    let (_, real, methods) = parts(file);
    let rc = (methods.xClose.expect("unix has xClose"))(real);
    ptr::drop_in_place(file as *mut ShimFile);
    (*file).pMethods = ptr::null();
    power_cut().lock().open_files -= 1;
    rc
}

unsafe extern "C" fn file_read(
    file: *mut ffi::sqlite3_file,
    buffer: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    if power_cut().is_off() {
        return ffi::SQLITE_IOERR_READ;
    }
    let (_, real, methods) = parts(file);
    (methods.xRead.expect("unix has xRead"))(real, buffer, amount, offset)
}

unsafe extern "C" fn file_write(
    file: *mut ffi::sqlite3_file,
    buffer: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let power_cut = power_cut();
    let (shim, real, methods) = parts(file);
    // The lock spans the write and its record, so a cut falls between
    // two writes, never inside one.
    let mut disk = power_cut.lock();
    if !power_cut.begin_change(&mut disk) {
        return ffi::SQLITE_IOERR_WRITE;
    }
    let rc = (methods.xWrite.expect("unix has xWrite"))(real, buffer, amount, offset);
    if rc == ffi::SQLITE_OK {
        if let Some(path) = &shim.path {
            let Ok(history) = disk.history(path) else {
                return ffi::SQLITE_IOERR_WRITE;
            };
            let bytes = std::slice::from_raw_parts(buffer as *const u8, amount as usize);
            history.volatile.push(Change::Write {
                offset: offset as usize,
                bytes: bytes.to_vec(),
            });
        }
    }
    rc
}

unsafe extern "C" fn file_truncate(
    file: *mut ffi::sqlite3_file,
    size: ffi::sqlite3_int64,
) -> c_int {
    let power_cut = power_cut();
    let (shim, real, methods) = parts(file);
    let mut disk = power_cut.lock();
    if !power_cut.begin_change(&mut disk) {
        return ffi::SQLITE_IOERR_TRUNCATE;
    }
    let rc = (methods.xTruncate.expect("unix has xTruncate"))(real, size);
    if rc == ffi::SQLITE_OK {
        if let Some(path) = &shim.path {
            let Ok(history) = disk.history(path) else {
                return ffi::SQLITE_IOERR_TRUNCATE;
            };
            history.volatile.push(Change::Truncate {
                size: size as usize,
            });
        }
    }
    rc
}

/// Makes the file durable in the model; the real file is not synced.
unsafe extern "C" fn file_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    let power_cut = power_cut();
    let (shim, _, _) = parts(file);
    let mut disk = power_cut.lock();
    if !power_cut.begin_change(&mut disk) {
        return ffi::SQLITE_IOERR_FSYNC;
    }
    if let Some(path) = &shim.path {
        let Ok(history) = disk.history(path) else {
            return ffi::SQLITE_IOERR_FSYNC;
        };
        history.sync();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    if power_cut().is_off() {
        return ffi::SQLITE_IOERR_FSTAT;
    }
    let (_, real, methods) = parts(file);
    (methods.xFileSize.expect("unix has xFileSize"))(real, size)
}

// Locks are kernel state, not storage: they pass through whatever the power.

unsafe extern "C" fn file_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xLock.expect("unix has xLock"))(real, level)
}

unsafe extern "C" fn file_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xUnlock.expect("unix has xUnlock"))(real, level)
}

unsafe extern "C" fn file_check_reserved_lock(
    file: *mut ffi::sqlite3_file,
    out: *mut c_int,
) -> c_int {
    let (_, real, methods) = parts(file);
    (methods
        .xCheckReservedLock
        .expect("unix has xCheckReservedLock"))(real, out)
}

/// Size and chunk hints are acknowledged and ignored: unix would act on
/// them by growing the file with `fallocate` or one-byte writes the shim
/// would not see.
unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    argument: *mut c_void,
) -> c_int {
    if op == ffi::SQLITE_FCNTL_SIZE_HINT || op == ffi::SQLITE_FCNTL_CHUNK_SIZE {
        return ffi::SQLITE_OK;
    }
    let (_, real, methods) = parts(file);
    (methods.xFileControl.expect("unix has xFileControl"))(real, op, argument)
}

unsafe extern "C" fn file_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xSectorSize.expect("unix has xSectorSize"))(real)
}

unsafe extern "C" fn file_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (_, real, methods) = parts(file);
    (methods
        .xDeviceCharacteristics
        .expect("unix has xDeviceCharacteristics"))(real)
}

// The wal-index is shared memory: passed through, and removed at the cut.

unsafe extern "C" fn file_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    region_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xShmMap.expect("unix has xShmMap"))(real, region, region_size, extend, out)
}

unsafe extern "C" fn file_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    count: c_int,
    flags: c_int,
) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xShmLock.expect("unix has xShmLock"))(real, offset, count, flags)
}

unsafe extern "C" fn file_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (_, real, methods) = parts(file);
    (methods.xShmBarrier.expect("unix has xShmBarrier"))(real)
}

unsafe extern "C" fn file_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xShmUnmap.expect("unix has xShmUnmap"))(real, delete)
}

/// Reads through the memory map as the store's connections do; SQLite
/// never writes through it (it is built without `SQLITE_MMAP_READWRITE`),
/// so every change still passes `file_write`. With the power off there is
/// no map, and SQLite falls back to `file_read`, which fails.
unsafe extern "C" fn file_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    if power_cut().is_off() {
        *out = ptr::null_mut();
        return ffi::SQLITE_OK;
    }
    let (_, real, methods) = parts(file);
    (methods.xFetch.expect("unix has xFetch"))(real, offset, amount, out)
}

unsafe extern "C" fn file_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    let (_, real, methods) = parts(file);
    (methods.xUnfetch.expect("unix has xUnfetch"))(real, offset, page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};
    use std::path::Path;

    /// A database made through the plain VFS and closed, so durable as a whole.
    fn database(dir: &Path, journal_mode: &str) -> std::path::PathBuf {
        let path = dir.join("model.db");
        let conn = Connection::open(&path).unwrap();
        conn.query_row(&format!("PRAGMA journal_mode={journal_mode}"), [], |_| {
            Ok(())
        })
        .unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        path
    }

    fn through_shim(path: &Path) -> Connection {
        Connection::open_with_flags_and_vfs(path, OpenFlags::default(), VFS_NAME).unwrap()
    }

    fn rows(path: &Path) -> Vec<i64> {
        let conn = Connection::open(path).unwrap();
        let mut statement = conn.prepare("SELECT n FROM t ORDER BY n").unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_cut_keeps_the_synced_commit_and_loses_the_unsynced_one() {
        let _exclusive = PowerCut::exclusive();
        let power_cut = PowerCut::install();
        let dir = tempfile::tempdir().unwrap();
        let path = database(dir.path(), "WAL");
        power_cut.arm(u64::MAX, Survivors::None);
        let conn = through_shim(&path);
        conn.execute_batch(
            "PRAGMA synchronous=FULL; INSERT INTO t VALUES (1);
             PRAGMA synchronous=OFF; INSERT INTO t VALUES (2);",
        )
        .unwrap();
        power_cut.cut();
        drop(conn);
        power_cut.power_on();
        assert_eq!(rows(&path), [1]);
    }

    /// SQLite's own documentation of `synchronous=EXTRA`: in DELETE mode a
    /// commit is durable only once the journal's unlink is, which takes a
    /// directory sync that FULL does not do.
    #[test]
    fn a_journal_deleted_without_a_directory_sync_comes_back_and_rolls_back() {
        let _exclusive = PowerCut::exclusive();
        let power_cut = PowerCut::install();
        for (synchronous, survivors) in [("FULL", vec![]), ("EXTRA", vec![1])] {
            let dir = tempfile::tempdir().unwrap();
            let path = database(dir.path(), "DELETE");
            power_cut.arm(u64::MAX, Survivors::None);
            let conn = through_shim(&path);
            conn.execute_batch(&format!(
                "PRAGMA synchronous={synchronous}; INSERT INTO t VALUES (1);"
            ))
            .unwrap();
            power_cut.cut();
            drop(conn);
            power_cut.power_on();
            assert_eq!(rows(&path), survivors, "synchronous={synchronous}");
        }
    }
}
