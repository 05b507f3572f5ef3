# The search index of the seeded posts, written as the search service stores documents.
set -eu
rm -rf /data/posts
mkdir -p /data/posts
printf '%s' '{"id": 1, "author": "ada", "title": "Welcome to the forum", "body": "Say hello below."}' > /data/posts/1.json
printf '%s' '{"id": 2, "author": "grace", "title": "Debugging tips", "body": "Print the state before you guess."}' > /data/posts/2.json
printf '%s' '{"id": 3, "author": "alan", "title": "On computable numbers", "body": "A short summary."}' > /data/posts/3.json
