#![cfg(loom)]
mod common;
use common::*;
use loom::sync::Arc;
use std::sync::Mutex;

static NOTE: Mutex<String> = Mutex::new(String::new());
fn note(s: String) {
    *NOTE.lock().unwrap() = s;
}

#[test]
fn dbg_merge_left() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |i| {
        eprintln!("NOTE: {}", NOTE.lock().unwrap());
        prev(i)
    }));
    model("dbg", || {
        let t = Arc::new(tree(config(1, 4, 2)));
        for i in 1..=5 {
            t.put(key(i), 1, val(i, 1)).unwrap();
        }
        t.set_gc_watermark(100);
        t.delete(key(5), 10).unwrap();
        let t1 = t.clone();
        let m = Worker::spawn(move || t1.delete(key(4), 11).unwrap());
        t.put(key(0), 20, val(0, 20)).unwrap();
        m.done();
        let st = t.stats();
        for i in 0..=7 {
            note(format!("after race {st:?}; get k{i}"));
            let _ = t.get(key(i), 200).unwrap();
        }
        note(String::new());
        quiesce();
        m.join();
    });
}
