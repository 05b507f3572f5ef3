-- Rows only: the schema comes from the migrate job (stacks/forum/services/migrate/main.py).
INSERT INTO posts (id, author, title, body, created_at) VALUES
  (1, 'ada', 'Welcome to the forum', 'Say hello below.', '2025-11-20 09:00:00+00'),
  (2, 'grace', 'Debugging tips', 'Print the state before you guess.', '2025-11-21 10:30:00+00'),
  (3, 'alan', 'On computable numbers', 'A short summary.', '2025-11-22 16:45:00+00');
SELECT setval('posts_id_seq', 100);
