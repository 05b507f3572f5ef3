"""The forum worker: consumes the `events` queue and stores each event as a row in Postgres."""

import json
import os
import time

import pika
import psycopg2

DATABASE_URL = os.environ["DATABASE_URL"]
AMQP_URL = os.environ["AMQP_URL"]
QUEUE = os.environ.get("EVENTS_QUEUE", "events")
CONNECT_TIMEOUT_S = 120


def connect() -> pika.BlockingConnection:
    """Connect to the broker, retrying while it starts."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            return pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        except pika.exceptions.AMQPConnectionError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"worker: broker unreachable for {CONNECT_TIMEOUT_S} s: {exc!r}")
            time.sleep(0.5)


def main() -> None:
    database = psycopg2.connect(DATABASE_URL)
    database.autocommit = True
    channel = connect().channel()
    channel.queue_declare(queue=QUEUE, durable=True)
    channel.basic_qos(prefetch_count=10)

    def handle(ch, method, _properties, body: bytes) -> None:
        event = json.loads(body)
        with database.cursor() as cur:
            cur.execute("INSERT INTO events (kind, payload) VALUES (%s, %s)",
                        (event.get("type", "unknown"), json.dumps(event)))
        ch.basic_ack(delivery_tag=method.delivery_tag)
        print(f"worker: stored {event.get('type')} {event.get('post_id')}", flush=True)

    channel.basic_consume(queue=QUEUE, on_message_callback=handle)
    print(f"worker: consuming {QUEUE}", flush=True)
    channel.start_consuming()


if __name__ == "__main__":
    main()
