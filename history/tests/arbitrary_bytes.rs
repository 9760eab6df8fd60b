//! No parser panics on arbitrary bytes: seeded mutations of real inputs go through every
//! format (the fuzz targets in `fuzz/` do the same at length; this runs with the tests).
//! Reading the same bytes as a stream (`read_from`) gives the same history or error as
//! reading them in memory (`parse_bytes`).

use faultline_history::import::{
    detect, edn, parse_bytes, read_from, Format, ImportOptions, Independent, Limits,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};

const SEEDS: [&str; 6] = [
    "{\"format\":\"faultline-history\",\"version\":1}\n{\"index\":0,\"time\":5,\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"k\",\"value\":[1,2]}\n{\"index\":1,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"kill\",\"value\":{\"n1\":[\"n2\"]},\"error\":\"\\u00e9\"}\n",
    "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2]\nINFO  jepsen.util - 0\t:fail\t:cas\t[1 2]\nINFO  jepsen.util - 3   :fail   :read   :timed-out\n",
    "{:process 0, :type :invoke, :f :append, :key \"9\", :value \"x 0 2 y\"}\n{:process 0, :type :ok, :f :get, :key \"9\", :value \"x\"}\n",
    "; c\n[#jepsen.history.Op{:index 0 :time 1 :process 0 :type :invoke :f :read :value [3 nil]}\n {:process :nemesis :type :info :f :start :value #{\"n1\" {:a [1.5 -2N 3M \\c]}}} #_ (x)]",
    "{:process 0 :type :ok :f :read :value \"\\u00e9\\ud83d\\ude00\\n\" :error ##Inf :node #:ns{:a 1}}",
    "[[[[{{{{#{#{(((\"\\",
];

const TOKENS: [&[u8]; 17] = [
    b"\xEF\xBB\xBF",
    b"{",
    b"}",
    b"[",
    b"]",
    b"(",
    b")",
    b"#",
    b"#_",
    b"\"",
    b"\\",
    b":",
    b";",
    b"\n",
    b"\xff",
    b"99999999999999999999999",
    b"\xe2\x82",
];

fn mutate(rng: &mut ChaCha8Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.gen_range(1..8) {
        let at = rng.gen_range(0..=out.len());
        match rng.gen_range(0..4) {
            0 if !out.is_empty() => {
                let end = (at + rng.gen_range(1..10)).min(out.len());
                out.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                out.splice(at..at, t.iter().copied());
            }
            2 if at < out.len() => out[at] = rng.gen(),
            _ => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                let n = rng.gen_range(1..300);
                let rep: Vec<u8> = t.iter().copied().cycle().take(t.len() * n).collect();
                out.splice(at..at, rep);
            }
        }
    }
    out
}

fn exercise(bytes: &[u8]) {
    assert_ne!(detect(bytes), Format::Auto);
    for format in [Format::Auto, Format::Jsonl, Format::Edn, Format::Porcupine] {
        for independent in [Independent::Auto, Independent::On, Independent::Off] {
            let opts = ImportOptions {
                independent,
                nil_reads_unknown: true,
            };
            let in_memory = parse_bytes(bytes, "fuzz", format, &opts);
            let streamed = read_from(bytes, "fuzz", format, &opts, &Limits::default());
            match (&in_memory, &streamed) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{format}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{format}"),
                _ => panic!("{format}: in memory {in_memory:?}, streamed {streamed:?}"),
            }
            if let Ok(h) = in_memory {
                let _ = h.pair("fuzz");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(forms) = edn::parse_all(text, "fuzz") {
            forms.iter().for_each(|f| drop(f.to_json()));
        }
    }
}

#[test]
fn seeded_mutations_never_panic() {
    for seed in 0..8u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for round in 0..150 {
            let base = SEEDS[rng.gen_range(0..SEEDS.len())].as_bytes();
            let input = mutate(&mut rng, base);
            let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&input)));
            assert!(
                outcome.is_ok(),
                "seed {seed} round {round}: a parser panicked on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let seed = 0xf00d;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for round in 0..300 {
        let len = rng.gen_range(0..200);
        let input: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(&input)));
        assert!(
            outcome.is_ok(),
            "seed {seed} round {round}: a parser panicked on {input:?}"
        );
    }
}
