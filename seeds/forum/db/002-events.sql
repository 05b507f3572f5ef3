-- The events the worker would have stored for the seeded posts.
INSERT INTO events (kind, payload, created_at) VALUES
  ('post_created', '{"type": "post_created", "post_id": 1, "author": "ada"}', '2025-11-20 09:00:01+00'),
  ('post_created', '{"type": "post_created", "post_id": 2, "author": "grace"}', '2025-11-21 10:30:01+00'),
  ('post_created', '{"type": "post_created", "post_id": 3, "author": "alan"}', '2025-11-22 16:45:01+00');
