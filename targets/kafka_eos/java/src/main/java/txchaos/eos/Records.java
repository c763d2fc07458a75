package txchaos.eos;

import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;

/** The JSON records of targets/kafka_eos/protocol.py, and the evidence each one carries. */
final class Records {
  private Records() {}

  /** A debit or credit record of one account. */
  static Map<String, Object> entry(Map<String, Object> meta, String kind, String account, long amount) {
    Map<String, Object> r = new TreeMap<>(meta);
    r.put("kind", kind);
    r.put("account", account);
    r.put("amount", amount);
    return r;
  }

  static Future<RecordMetadata> send(KafkaProducer<byte[], byte[]> producer, String topic, int partition,
      Map<String, Object> value) throws IOException {
    return producer.send(new ProducerRecord<>(topic, partition, null, Processor.JSON.writeValueAsBytes(value)));
  }

  /** The producer id and epoch, for the evidence; the client keeps them private. */
  static long[] producerIdAndEpoch(KafkaProducer<byte[], byte[]> producer) {
    try {
      Field tmField = KafkaProducer.class.getDeclaredField("transactionManager");
      tmField.setAccessible(true);
      Object tm = tmField.get(producer);
      Method get = tm.getClass().getDeclaredMethod("producerIdAndEpoch");
      get.setAccessible(true);
      Object pe = get.invoke(tm);
      long id = pe.getClass().getField("producerId").getLong(pe);
      short epoch = pe.getClass().getField("epoch").getShort(pe);
      return new long[] {id, epoch};
    } catch (ReflectiveOperationException | RuntimeException e) {
      return new long[] {-1, -1};
    }
  }
}
