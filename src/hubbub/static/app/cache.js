// Recent messages kept in IndexedDB, so a reload shows the conversation at
// once and then catches up from the cached positions. A key-value store;
// every failure (private mode, quota) just means "no cache".

const DB = "hubbub";
const STORE = "kv";
let dbPromise = null;
let db = null; // once open: used directly, so a write at pagehide starts at once

function open() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      let req;
      try {
        req = indexedDB.open(DB, 1);
      } catch {
        resolve(null);
        return;
      }
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => {
        db = req.result;
        resolve(db);
      };
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    });
  }
  return dbPromise;
}

function run(mode, fn) {
  if (db) return transact(db, mode, fn);
  return open().then((opened) => transact(opened, mode, fn));
}

function transact(db, mode, fn) {
  return new Promise((resolve) => {
        if (!db) return resolve(undefined);
        try {
          const tx = db.transaction(STORE, mode);
          const result = fn(tx.objectStore(STORE));
          tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
          tx.onerror = tx.onabort = () => resolve(undefined);
        } catch {
          resolve(undefined);
        }
  });
}

export const cacheGet = (key) => run("readonly", (s) => s.get(key));
export const cacheSet = (key, value) => run("readwrite", (s) => s.put(value, key));

export function cacheGetPrefix(prefix) {
  const range = IDBKeyRange.bound(prefix, prefix + "\uffff");
  return open().then(
    (db) =>
      new Promise((resolve) => {
        if (!db) return resolve([]);
        const out = [];
        try {
          const req = db.transaction(STORE, "readonly").objectStore(STORE).openCursor(range);
          req.onsuccess = () => {
            const cur = req.result;
            if (cur) {
              out.push([cur.key, cur.value]);
              cur.continue();
            } else resolve(out);
          };
          req.onerror = () => resolve(out);
        } catch {
          resolve(out);
        }
      }),
  );
}

export const cacheDeletePrefix = (prefix) =>
  run("readwrite", (s) => s.delete(IDBKeyRange.bound(prefix, prefix + "\uffff")));
export const cacheDelete = (key) => run("readwrite", (s) => s.delete(key));
