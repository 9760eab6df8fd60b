#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds from ../testdata (the corpus is not committed).
set -euo pipefail
cd "$(dirname "$0")"
td=../testdata/porcupine
mkdir -p corpus/jsonl corpus/edn corpus/porcupine_etcd corpus/auto_load
cp "$td"/jepsen/etcd_00[0-9].log "$td"/jepsen/etcd_10[0-2].log corpus/porcupine_etcd/
cp "$td"/kv/c01-*.txt "$td"/kv/c10-ok.txt ../testdata/causal/jepsen-causal-reverse/*.edn corpus/edn/
# The EDN target reads its first byte as options: prefix seeds with one.
for f in corpus/edn/*; do { printf 'a'; cat "$f"; } > "$f.opt" && mv "$f.opt" "$f"; done
cat > corpus/edn/independent.edn <<'EDN'
a[{:index 0 :time 5 :process 0 :type :invoke :f :cas :value [3 [1 2]]}
 #jepsen.history.Op{:index 1, :time 9, :process 0, :type :ok, :f :cas, :value [3 [1 2]]}
 {:process :nemesis :type :info :f :start :value {"n1" #{"n2"}} :error "x\u00e9\n"}] ; end
EDN
# JSONL seeds: a few etcd logs converted to faultline-history/1.
for n in 000 002 100; do
  awk -v OFS='' 'BEGIN { print "{\"format\":\"faultline-history\",\"version\":1,\"seed\":1}" }
    { p=$4; t=substr($5,2); f=substr($6,2); v=$7;
      if (v == "nil") v = "null"; else if (v ~ /^\[/) { gsub(/ /, ",", v) } else if (v ~ /^:/) v = "null";
      print "{\"index\":", NR-1, ",\"time\":", NR*1000, ",\"process\":", p, ",\"type\":\"", t, "\",\"f\":\"", f, "\",\"key\":\"k\",\"value\":", v, "}" }' \
    FS='[ \t]+' "$td/jepsen/etcd_$n.log" > "corpus/jsonl/etcd_$n.jsonl"
done
printf '{"index":0,"time":1,"process":"nemesis","type":"info","f":"partition","value":{"n1":["n3"]},"node":"n1","error":"\\u00e9"}\n{"index":1,"process":0,"type":"invoke","f":"re' > corpus/jsonl/truncated.jsonl
cp corpus/jsonl/* corpus/porcupine_etcd/etcd_000.log corpus/auto_load/
cp corpus/edn/c01-ok.txt corpus/edn/independent.edn corpus/auto_load/
sed -i '1s/^a//' corpus/auto_load/c01-ok.txt corpus/auto_load/independent.edn
echo "seeded: $(ls corpus/* | wc -l) files"
