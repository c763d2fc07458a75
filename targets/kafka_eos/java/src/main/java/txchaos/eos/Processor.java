package txchaos.eos;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.FileWriter;
import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.CloseOptions;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The payment processor on Kafka transactions, on Kafka's own Java client.
 *
 * <p>The same protocol as targets/kafka_eos/processor.py (topics, records, mutants; see
 * targets/kafka_eos/protocol.py): one task per assigned input partition, each with a transactional
 * producer whose id is stable per partition (initTransactions fences the predecessor and completes
 * its open transaction), balances restored from the committed account records up to the high
 * watermark, and per payment ONE transaction with the debit, credit, ledger and result records and
 * the input offset. Unlike aiokafka, sendOffsetsToTransaction takes the consumer's group metadata,
 * so the group coordinator also fences a zombie by its generation (KIP-447).
 */
public final class Processor {
  static final int TXN_TIMEOUT_MS = 10_000;
  static final Duration RESTORE_TIMEOUT = Duration.ofSeconds(15);
  static final ObjectMapper JSON =
      new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);

  final String bootstrap, ns, instance, mutant;
  final int requestPartitions;
  final List<String> accounts;
  final Map<String, Integer> initial;
  final Path dataDir;
  final Writer journal;
  final Map<Integer, Task> tasks = new HashMap<>();
  final Map<String, Long> credits = new HashMap<>(), debits = new HashMap<>();
  final Map<String, Map<?, ?>> results = new HashMap<>(); // payment id -> first committed result
  final Map<TopicPartition, OffsetAndMetadata> processed = new HashMap<>();
  long lastCommit = 0;
  KafkaConsumer<byte[], byte[]> consumer, tail, probe;
  KafkaProducer<byte[], byte[]> plain;

  static final class Task {
    final int partition;
    final KafkaProducer<byte[], byte[]> producer;
    final String tid;
    long nextOffset;
    final Map<String, Long> debits;
    final Map<String, Map<?, ?>> done = new HashMap<>(); // our own committed results
    int seq = 0;

    Task(int partition, KafkaProducer<byte[], byte[]> producer, String tid, long nextOffset,
        Map<String, Long> debits) {
      this.partition = partition;
      this.producer = producer;
      this.tid = tid;
      this.nextOffset = nextOffset;
      this.debits = debits;
    }
  }

  Processor(Map<String, String> args, Map<String, Integer> initial) throws IOException {
    this.bootstrap = args.get("bootstrap").replaceFirst("^kafka://", "");
    this.ns = args.get("ns");
    this.instance = args.get("instance");
    this.requestPartitions = Integer.parseInt(args.getOrDefault("request-partitions", "2"));
    String m = System.getenv("TXCHAOS_MUTANT");
    this.mutant = m == null || m.isEmpty() ? "" : m;
    this.initial = initial;
    this.accounts = new ArrayList<>(new TreeMap<>(initial).keySet());
    this.dataDir = Path.of(args.get("data-dir")).toAbsolutePath();
    Files.createDirectories(dataDir);
    this.journal = new FileWriter(dataDir.resolve(instance + ".txns.jsonl").toFile(), true);
  }

  // -- layout (protocol.py's Layout) ----------------------------------------------
  String requests() { return ns + ".requests"; }
  String accountTopic() { return ns + ".accounts"; }
  String ledger() { return ns + ".ledger"; }
  String results() { return ns + ".results"; }
  String group() { return ns + ".processors"; }
  int accountPartition(String a) { return accounts.indexOf(a); }
  int requestPartition(String a) { return accountPartition(a) % requestPartitions; }

  List<String> owned(int p) {
    List<String> out = new ArrayList<>();
    for (String a : accounts) if (requestPartition(a) == p) out.add(a);
    return out;
  }

  // -- clients ----------------------------------------------------------------------
  Properties common(String clientId) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("client.id", clientId);
    p.put("request.timeout.ms", "10000");
    return p;
  }

  KafkaConsumer<byte[], byte[]> reader(String clientId, String isolation) {
    Properties p = common(clientId);
    p.put("isolation.level", isolation);
    p.put("enable.auto.commit", "false");
    return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
  }

  KafkaProducer<byte[], byte[]> producer(String clientId, String tid) {
    Properties p = common(clientId);
    p.put("acks", "all");
    p.put("delivery.timeout.ms", "30000");
    p.put("max.block.ms", "20000");
    if (tid != null) {
      p.put("transactional.id", tid);
      p.put("transaction.timeout.ms", String.valueOf(TXN_TIMEOUT_MS));
    }
    return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
  }

  void run() throws Exception {
    Properties p = common(instance);
    p.put("group.id", group());
    p.put("group.instance.id", instance); // static membership
    p.put("isolation.level", "read_committed");
    p.put("enable.auto.commit", "false");
    p.put("auto.offset.reset", "earliest");
    p.put("session.timeout.ms", "6000");
    p.put("heartbeat.interval.ms", "1000");
    p.put("max.poll.interval.ms", "30000");
    p.put("max.poll.records", "20");
    consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    tail = reader(instance + "-state",
        mutant.equals("uncommitted-restore") ? "read_uncommitted" : "read_committed");
    probe = reader(instance + "-probe", "read_uncommitted");
    List<TopicPartition> tps = new ArrayList<>();
    for (int i = 0; i < accounts.size(); i++) tps.add(new TopicPartition(accountTopic(), i));
    for (int i = 0; i < requestPartitions; i++) tps.add(new TopicPartition(results(), i));
    tail.assign(tps);
    tail.seekToBeginning(tps);
    if (mutant.equals("early-result")) plain = producer(instance + "-early", null);
    consumer.subscribe(List.of(requests()), new Listener());
    Files.writeString(dataDir.resolve(instance + ".ready"), String.valueOf(ProcessHandle.current().pid()));
    log("started (mutant " + (mutant.isEmpty() ? "none" : mutant) + ")");
    try {
      while (true) {
        ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(300));
        for (TopicPartition tp : batch.partitions()) {
          for (ConsumerRecord<byte[], byte[]> rec : batch.records(tp)) {
            if (!handle(tp, rec)) break;
          }
        }
        if (!processed.isEmpty() && System.currentTimeMillis() - lastCommit >= 1000) commitOutside();
      }
    } catch (WakeupException e) {
      log("stopping");
    } finally {
      for (Integer q : new ArrayList<>(tasks.keySet())) drop(q);
      consumer.close(CloseOptions.timeout(Duration.ofSeconds(3)));
      tail.close(CloseOptions.timeout(Duration.ofSeconds(1)));
      probe.close(CloseOptions.timeout(Duration.ofSeconds(1)));
      if (plain != null) plain.close(Duration.ofSeconds(1));
    }
  }

  /** offsets-outside-txn: the consumer commits what was processed, at most once a second. */
  void commitOutside() {
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>(processed);
    processed.clear();
    lastCommit = System.currentTimeMillis();
    try {
      consumer.commitSync(offsets);
    } catch (RuntimeException e) {
      log("offset commit failed: " + e);
    }
  }

  final class Listener implements ConsumerRebalanceListener {
    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
      if (!processed.isEmpty()) commitOutside();
      for (TopicPartition tp : revoked) drop(tp.partition());
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> lost) {
      processed.clear();
      for (TopicPartition tp : lost) drop(tp.partition());
    }

    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
      log("assigned " + assigned);
    }
  }

  // -- tasks ------------------------------------------------------------------------
  Task open(TopicPartition tp) {
    int p = tp.partition();
    String tid = ns + ".tx.p" + p;
    if (mutant.equals("fresh-txn-id")) tid += "." + UUID.randomUUID().toString().substring(0, 8);
    KafkaProducer<byte[], byte[]> producer = producer(instance + "-p" + p, tid);
    try {
      producer.initTransactions(); // fences older epochs, completes their open transaction
      catchUp(true);
      OffsetAndMetadata c = consumer.committed(Set.of(tp)).get(tp);
      long committed = c == null ? 0 : c.offset();
      consumer.seek(tp, committed);
      Map<String, Long> d = new HashMap<>();
      for (String a : owned(p)) d.put(a, debits.getOrDefault(a, 0L));
      Task task = new Task(p, producer, tid, committed, d);
      tasks.put(p, task);
      long[] pe = Records.producerIdAndEpoch(producer);
      log("task p" + p + " open: tid " + tid + " pid " + pe[0] + " epoch " + pe[1] + " offset " + committed
          + " debits " + d);
      return task;
    } catch (RuntimeException e) {
      producer.close(Duration.ofSeconds(2));
      throw e;
    }
  }

  void drop(int p) {
    Task task = tasks.remove(p);
    if (task != null) {
      task.producer.close(Duration.ofSeconds(5));
      log("task p" + p + " closed");
    }
  }

  void apply(ConsumerRecord<byte[], byte[]> rec) {
    try {
      Map<?, ?> r = JSON.readValue(rec.value(), Map.class);
      if (rec.topic().equals(results())) {
        results.putIfAbsent((String) r.get("payment"), r);
        return;
      }
      Map<String, Long> book = "credit".equals(r.get("kind")) ? credits : debits;
      book.merge((String) r.get("account"), ((Number) r.get("amount")).longValue(), Long::sum);
    } catch (IOException e) {
      log("bad account record at " + rec.offset() + ": " + e);
    }
  }

  /** Apply new account records; full: up to the high watermark of now (see processor.py). */
  void catchUp(boolean full) {
    if (!full) {
      for (ConsumerRecord<byte[], byte[]> r : tail.poll(Duration.ZERO)) apply(r);
      return;
    }
    Set<TopicPartition> tps = tail.assignment();
    Map<TopicPartition, Long> end = probe.endOffsets(tps);
    long deadline = System.nanoTime() + RESTORE_TIMEOUT.toNanos();
    while (true) {
      boolean behind = false;
      for (TopicPartition tp : tps) if (tail.position(tp) < end.get(tp)) behind = true;
      if (!behind) return;
      if (System.nanoTime() > deadline)
        throw new org.apache.kafka.common.errors.TimeoutException("restore: account partitions not read to their end");
      for (ConsumerRecord<byte[], byte[]> r : tail.poll(Duration.ofMillis(200))) apply(r);
    }
  }

  // -- one payment ------------------------------------------------------------------
  boolean handle(TopicPartition tp, ConsumerRecord<byte[], byte[]> msg) {
    if (!consumer.assignment().contains(tp)) return false;
    Task task = tasks.get(tp.partition());
    if (task == null) {
      try {
        open(tp);
      } catch (RuntimeException e) {
        log("task p" + tp.partition() + " could not open: " + e);
        if (consumer.assignment().contains(tp)) consumer.seek(tp, msg.offset());
        sleep(1000);
      }
      return false; // the consumer now reads from the committed offset
    }
    if (msg.offset() < task.nextOffset) return true;
    if (msg.offset() > task.nextOffset) {
      consumer.seek(tp, task.nextOffset);
      return false;
    }
    try {
      transact(task, tp, msg);
    } catch (Exception e) {
      log("task p" + tp.partition() + ": payment at offset " + msg.offset() + " failed (" + e + "); reopening");
      drop(tp.partition());
      if (consumer.assignment().contains(tp)) consumer.seek(tp, msg.offset());
      return false;
    }
    task.nextOffset = msg.offset() + 1;
    return true;
  }

  void transact(Task task, TopicPartition tp, ConsumerRecord<byte[], byte[]> msg) throws Exception {
    Map<?, ?> req = JSON.readValue(msg.value(), Map.class);
    String pid = (String) req.get("id"), src = (String) req.get("from"), dst = (String) req.get("to");
    long amount = ((Number) req.get("amount")).longValue();
    catchUp(false);
    // A client's re-submission (a new request record, known payment id) gets the first result
    // again; the same record delivered twice is what the transactions exclude (see processor.py).
    Map<?, ?> earlier = task.done.containsKey(pid) ? task.done.get(pid) : results.get(pid);
    boolean replay = earlier != null && !Long.valueOf(msg.offset()).equals(number(earlier.get("offset")));
    long balance = initial.getOrDefault(src, 0) + credits.getOrDefault(src, 0L) - task.debits.getOrDefault(src, 0L);
    boolean accepted = !replay && initial.containsKey(src) && initial.containsKey(dst) && !src.equals(dst)
        && amount > 0 && amount <= balance;
    KafkaProducer<byte[], byte[]> producer = task.producer;
    long[] pe = Records.producerIdAndEpoch(producer);
    task.seq++;
    String attempt = task.tid + "/" + pe[0] + "." + pe[1] + "/" + task.seq;
    Map<String, Object> meta = new TreeMap<>();
    meta.put("payment", pid);
    meta.put("txn", attempt);
    meta.put("tid", task.tid);
    meta.put("pid", pe[0]);
    meta.put("epoch", pe[1]);
    meta.put("by", instance);
    String status = replay ? String.valueOf(earlier.get("status")) : accepted ? "ok" : "refused";
    journal(Map.of("txn", attempt, "tid", task.tid, "pid", pe[0], "epoch", pe[1], "payment", pid,
        "status", replay ? "replay" : status, "outcome", "begin", "offset", msg.offset(),
        "partition", tp.partition()));
    Map<String, Object> result = new TreeMap<>(meta);
    result.put("status", status);
    result.put("from", src);
    result.put("to", dst);
    result.put("amount", amount);
    result.put("offset", msg.offset());
    if (replay) result.put("replay", true);
    try {
      producer.beginTransaction();
      List<Future<RecordMetadata>> sends = new ArrayList<>();
      if (accepted) {
        sends.add(Records.send(producer, accountTopic(), accountPartition(src),
            Records.entry(meta, "debit", src, amount)));
        sends.add(Records.send(producer, accountTopic(), accountPartition(dst),
            Records.entry(meta, "credit", dst, amount)));
        Map<String, Object> l = new TreeMap<>(meta);
        l.put("from", src);
        l.put("to", dst);
        l.put("amount", amount);
        sends.add(Records.send(producer, ledger(), 0, l));
      }
      if (mutant.equals("early-result")) {
        Records.send(plain, results(), tp.partition(), result).get();
      } else {
        sends.add(Records.send(producer, results(), tp.partition(), result));
      }
      if (mutant.equals("offsets-outside-txn")) {
        processed.put(tp, new OffsetAndMetadata(msg.offset() + 1)); // committed later, by the consumer
      } else {
        producer.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(msg.offset() + 1)),
            consumer.groupMetadata());
      }
      for (Future<RecordMetadata> f : sends) f.get();
      producer.commitTransaction();
    } catch (Exception e) {
      String outcome = "unknown";
      if (!(e instanceof ProducerFencedException) && !(e instanceof InvalidProducerEpochException)) {
        try {
          producer.abortTransaction();
          outcome = "aborted";
        } catch (RuntimeException ignored) {
          // the transaction's fate is up to the broker (timeout) or the next epoch (fencing)
        }
      }
      journal(Map.of("txn", attempt, "payment", pid, "outcome", outcome, "error", String.valueOf(e)));
      throw e;
    }
    journal(Map.of("txn", attempt, "payment", pid, "outcome", "committed"));
    if (!replay) task.done.put(pid, result);
    if (accepted) task.debits.merge(src, amount, Long::sum);
  }

  void journal(Map<String, Object> fields) throws IOException {
    Map<String, Object> line = new TreeMap<>(fields);
    line.put("t", System.currentTimeMillis() / 1000.0);
    journal.write(JSON.writeValueAsString(line) + "\n");
    journal.flush();
  }

  void log(String msg) {
    System.out.println(java.time.LocalDateTime.now() + " INFO kafka_eos " + instance + ": " + msg);
    System.out.flush();
  }

  static Long number(Object o) {
    return o instanceof Number n ? n.longValue() : null;
  }

  static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) args.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
    for (String k : List.of("bootstrap", "ns", "instance", "data-dir"))
      if (!args.containsKey(k)) throw new IllegalArgumentException("missing --" + k);
    @SuppressWarnings("unchecked")
    Map<String, Integer> initial = JSON.readValue(System.getenv("TXCHAOS_ACCOUNTS"), Map.class);
    Processor proc = new Processor(args, initial);
    Thread main = Thread.currentThread();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      if (proc.consumer != null) proc.consumer.wakeup();
      try {
        main.join(8000);
      } catch (InterruptedException ignored) {
      }
    }));
    proc.run();
  }
}
