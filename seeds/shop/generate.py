#!/usr/bin/env python3
"""Generate the shop's seed data: seeds/shop/<service>/NNN-*.sql and NNN-*.redis.

    python3 seeds/shop/generate.py           # (re)write the seed files
    python3 seeds/shop/generate.py --check   # exit 1 when the committed files differ

Deterministic: one RNG per data set, seeded from a constant; fixed dates (no clock); stdlib
only. The table definitions are the apps' own SCHEMA constants and the demo products and
users are the apps' own DEMO lists, read from stacks/shop/services/*/app.py with `ast`, so a
schema change in an app makes --check fail until the seeds are generated again.

Formats (what stacklet's engine runs, see README.md):
  *.sql    psql -v ON_ERROR_STOP=1 --single-transaction -U shop -d <db> < file
  *.redis  redis-cli < file: one command per line, values in double quotes. redis-cli has no
           comments and exits 0 even when a line fails, so every line written here is parsed
           back with redis-cli's own splitting rules (split_redis_args) before it is written.
"""
from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICES = HERE.parent.parent / "stacks" / "shop" / "services"
SEED = "stacklet-shop-seed-1"

N_PRODUCTS = 5000        # SKU-0001..SKU-5000 (the first 20 are the catalog app's demo products)
N_USERS = 3000           # u-1..u-3000 (the first 5 are the users app's demo users)
N_ORDERS = 2000          # past orders of generated users, paid, with their charges and reservations
N_RELEASED = 120         # reservations released again (orders that failed: out of stock, fraud, ...)
N_OLD_SESSIONS = 300     # sessions of generated users that expired during the last year
OUT_OF_STOCK_SHARE = 0.06
FRAUD_LIMIT = 50000      # FRAUD_MAX_AMOUNT_CENTS in compose.yaml: no past order is above it
BATCH = 500              # rows per INSERT, members per SADD
MSET_BATCH = 50          # charges per MSET line
HISTORY_START = dt.datetime(2025, 11, 21, tzinfo=dt.timezone.utc)  # a year of history
HISTORY_END = dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc)

# ---- the edge cases (fixed ids; README.md says which requests exercise them) ------------------

# (sku, name, price_cents, stock)
EDGE_PRODUCTS = [
    ("SKU-FREE-0001", "Free sample: house espresso beans 20 g", 0, 10000),
    ("SKU-UNI-0001", "Crème brûlée syrup — Café L'Été, 750 ml", 899, 100),
    ("SKU-UNI-0002", "抹茶 Matcha 宇治 Uji ceremonial grade 30 g", 2899, 100),
    ("SKU-UNI-0003", "Dallah دلة قهوة عربية — Arabic coffee pot, brass", 3999, 100),
    ("SKU-UNI-0004", "קפה טורקי — Turkish coffee 200 g", 899, 100),
    ("SKU-UNI-0005", "☕ Mug “Good morning” 🌅 350 ml", 1599, 100),
    ("SKU-UNI-0006", "Barista's \"Double\" O'Shot tamper \\ 58 mm'); DROP TABLE products; --", 2499, 100),
    ("SKU-UNI-0007", "Cafe\u0301 au lait bowls 👩🏽\u200d🍳 set of 2", 3499, 100),
    ("SKU-BIG-0001", "Commercial espresso machine, 2 groups", 549900, 5),
    ("SKU-LOW-0001", "Vintage hand grinder (last one)", 4999, 1),
    ("SKU-OOS-0001", "Panamá Geisha natural 100 g, limited", 4999, 0),
]
# (id, name, email)
EDGE_USERS = [
    ("u-paid-1", "Margaret Hamilton", "margaret@example.com"),
    ("u-expired-1", "Rip Van Winkle", "rip@example.com"),
    ("u-uni-1", "José Ñúñez-Gómez", "josé.núñez@example.com"),
    ("u-uni-2", "山田 太郎", "taro.yamada@example.com"),
    ("u-uni-3", "محمد عبد الله", "mohammed.abdullah@example.com"),
    ("u-uni-4", "נועה כהן", "noa.cohen@example.com"),
    ("u-uni-5", "Seán \"Shawn\" O'Brien-D'Arcy \\ Jr.", "sean.obrien@example.com"),
    ("u-uni-6", "Zoë 🚀 Ng 👩🏽\u200d💻", "zoe.ng@example.com"),
]
# (token, user_id, expires_at)
EDGE_SESSIONS = [
    ("tok-expired-0001", "u-expired-1", "2025-01-01T00:00:00Z"),
    ("tok-valid-0001", "u-1", "2099-12-31T23:59:59Z"),
]
PAID_AT = dt.datetime(2026, 11, 20, 10, 0, 0, tzinfo=dt.timezone.utc)
PAID_ORDER = {
    "id": "ord_seed_paid_1", "user_id": "u-paid-1", "charge_id": "ch_seed_paid_1",
    "reservation_id": "res_seed_paid_1", "idempotency_key": "idem-seed-paid-1",
    "items": [{"sku": "SKU-0003", "qty": 2, "price_cents": 1299}, {"sku": "SKU-0005", "qty": 1, "price_cents": 599}],
}

# ---- name pools -------------------------------------------------------------------------------

ORIGINS = ["Ethiopia Yirgacheffe", "Ethiopia Sidamo", "Ethiopia Guji", "Kenya Nyeri AA", "Kenya Kirinyaga",
           "Colombia Huila", "Colombia Nariño", "Brazil Cerrado", "Brazil Mogiana", "Guatemala Antigua",
           "Guatemala Huehuetenango", "Costa Rica Tarrazú", "Honduras Marcala", "El Salvador Santa Ana",
           "Panamá Boquete", "Perú Cajamarca", "México Chiapas", "Sumatra Mandheling", "Java Ijen",
           "Papua New Guinea Sigri", "Yemen Haraz", "Rwanda Nyamasheke", "Burundi Kayanza",
           "Tanzania Kilimanjaro", "Vietnam Đà Lạt", "India Monsooned Malabar", "Jamaica Blue Mountain",
           "Hawaiʻi Kona", "Nicaragua Jinotega", "Bolivia Caranavi", "Ecuador Loja", "Uganda Bugisu",
           "China Yunnan 云南", "Timor-Leste Ermera", "Réunion Bourbon Pointu"]
PREMIUM_ORIGINS = {"Panamá Boquete", "Jamaica Blue Mountain", "Hawaiʻi Kona", "Réunion Bourbon Pointu",
                   "Yemen Haraz"}
BLENDS = ["House blend", "Mélange Maison", "Espresso Napoletano", "Breakfast blend", "Decaf Swiss Water",
          "Caffè Crema", "Mokka Java", "Nordic light", "Barista's blend", "Dark Knight espresso",
          "Café de Olla", "Kaffee Klatsch", "Sunday Morning"]
PROCESSES = ["washed", "natural", "honey", "anaerobic", "wet-hulled", "carbonic maceration"]
ROASTS = ["light roast", "medium roast", "dark roast", "espresso roast", "filter roast", "omni roast"]
BEAN_SIZES = [("250 g", 1.0), ("500 g", 1.9), ("1 kg", 3.6)]

TEAS = ["Darjeeling first flush", "Darjeeling second flush", "Assam TGFOP", "Earl Grey", "Earl Grey crème",
        "English breakfast", "Sencha", "Gyokuro 玉露", "Matcha 抹茶", "Hōjicha ほうじ茶", "Genmaicha 玄米茶",
        "Long Jing 龙井", "Tieguanyin 铁观音", "Pu-erh 普洱 2019", "Rooibos", "Chamomile", "Peppermint",
        "Masala chai", "Jasmine pearls", "Oolong Dong Ding", "Lapsang souchong", "Yerba mate",
        "Thé à la menthe", "Çay Rize", "Silver Needle 白毫银针", "Kukicha", "Hibiscus & rosehip",
        "Lemon verbena", "Ceylon Nuwara Eliya", "Nilgiri frost", "Бабушкин чай (Grandma's blend)"]
TEA_FORMS = [("loose leaf 100 g", 1.0), ("loose leaf 250 g", 2.2), ("tea bags x20", 0.7),
             ("tea bags x50", 1.5), ("tin 80 g", 1.1), ("sampler 5 x 10 g", 0.9)]

BRANDS = ["Nordbrew", "Kōhī Works", "Café Lumière", "Bräu & Bohne", "Tazza d'Oro", "L'Artisan",
          "Barista's Choice", "Ritual & Co.", "Mokkamestari", "Jade Kettle", "Ōkami", "Cafetière Royale",
          "Ember Lane", "Smith & O'Hara", "Fika Design", "Crema Crafts", "Čajovna", "Søstrene Bønne",
          "Moka Milano", "Tetsubin-ya 鉄瓶屋"]
COLOURS = ["matte black", "white", "copper", "stainless", "sage green", "terracotta", "blush pink",
           "navy", "charcoal", "cream", "olive", "sky blue", "burnt orange"]
# (item, variants, lowest and highest price in whole units)
EQUIPMENT = [
    ("pour-over dripper", ["size 01", "size 02", "ceramic", "glass", "copper"], 12, 55),
    ("gooseneck kettle", ["0.6 l", "0.9 l", "1.2 l", "stovetop", "electric"], 29, 149),
    ("electric kettle", ["1 l", "1.7 l", "variable temperature"], 39, 179),
    ("burr grinder", ["conical", "flat burr", "Mk II", "Pro", "Mini"], 59, 499),
    ("hand grinder", ["ceramic burrs", "steel burrs", "travel", "XL"], 29, 249),
    ("espresso machine", ["single boiler", "dual boiler", "heat exchanger", "lever", "compact"], 199, 2999),
    ("French press", ["350 ml", "1 l", "double wall", "glass"], 19, 69),
    ("moka pot", ["3 cups", "6 cups", "9 cups", "induction"], 19, 79),
    ("cold brew maker", ["1 l", "1.5 l", "pitcher", "tower"], 19, 149),
    ("siphon brewer", ["3 cups", "5 cups"], 49, 149),
    ("coffee scale", ["with timer", "pocket", "Pro", "0.1 g"], 19, 149),
    ("milk frother", ["handheld", "induction", "manual"], 14, 129),
    ("milk pitcher", ["350 ml", "600 ml", "950 ml"], 9, 39),
    ("tamper", ["58 mm", "53 mm", "51 mm", "calibrated 58.5 mm"], 14, 119),
    ("knock box", ["small", "large", "drawer"], 14, 89),
    ("cezve", ["brass", "copper, 250 ml", "stainless, 400 ml"], 14, 59),
    ("kyūsu teapot 急須", ["250 ml", "350 ml", "Tokoname clay"], 24, 119),
    ("gaiwan 盖碗", ["100 ml", "150 ml", "celadon"], 14, 69),
    ("cast iron teapot", ["0.6 l", "0.9 l"], 39, 159),
    ("travel tumbler", ["350 ml", "470 ml", "leak-proof"], 14, 49),
    ("espresso cups x2", ["80 ml", "double wall"], 12, 45),
    ("cappuccino cups x2", ["180 ml", "porcelain"], 14, 55),
    ("latte glasses x4", ["300 ml", "tall"], 14, 45),
    ("mug", ["350 ml", "enamel", "stoneware", "handmade"], 9, 39),
    ("thermos", ["0.5 l", "1 l"], 19, 69),
]
CONSUMABLES = [
    ("paper filters x100", 4, 12), ("cloth filter", 7, 19), ("cleaning tablets x100", 9, 24),
    ("descaler 500 ml", 9, 19), ("water filter cartridge", 12, 35), ("grinder cleaner", 9, 19),
    ("group head brush", 6, 16), ("Vanilla syrup 750 ml", 7, 14), ("Caramel syrup 750 ml", 7, 14),
    ("Hazelnut syrup 750 ml", 7, 14), ("Sirop d'érable 250 ml", 9, 19), ("Pumpkin spice syrup 750 ml", 7, 14),
    ("Hot chocolate 70 % 250 g", 7, 16), ("Cantuccini 200 g", 4, 9), ("Stroopwafels x8", 3, 7),
    ("Speculoos 250 g", 3, 7), ("Dorayaki どら焼き x4", 5, 11), ("Lebkuchen 300 g", 5, 12),
    ("Chai concentrate 1 l", 7, 15), ("Oat milk barista 1 l", 2, 4), ("Cocoa nibs 200 g", 5, 11),
]
GIFT_CARDS = [1000, 2500, 5000, 10000, 20000]

# (weight, order, given names, family names): names as (shown, ascii for the e-mail address)
def _pairs(text):
    return [tuple(p.split("=")) if "=" in p else (p, p) for p in text.split("|")]


CULTURES = [
    (40, "given family",
     _pairs("James|Mary|John|Patricia|Robert|Jennifer|Michael|Linda|William|Elizabeth|David|Barbara|Richard|"
            "Susan|Joseph|Jessica|Thomas|Sarah|Charles|Karen|Emily|Oliver|Amelia|Harry|Olivia|Jack|Isla|"
            "George|Ava|Noah|Sophie|Liam|Chloe|Grace|Ethan|Mia|Lucas|Hannah|Daniel|Ruby|Samuel|Evie|Aisha|"
            "Priya|Kwame|Ngozi|Tariq|Maya"),
     _pairs("Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Wilson|Taylor|Anderson|Thomas|Moore|Martin|"
            "Jackson|Thompson|White|Harris|Clark|Lewis|Walker|Hall|Young|King|Wright|Scott|Green|Baker|Adams|"
            "Nelson|Hill|Campbell|Mitchell|Roberts|Carter|Evans|Turner|Parker|Collins|Edwards|Murphy|Cook|"
            "O'Brien=obrien|O'Connor=oconnor|O'Neill=oneill|McCarthy|D'Souza=dsouza|Smith-Jones=smithjones|"
            "van der Berg=vanderberg|Okafor|Mensah|Patel|Khan")),
    (6, "given family",
     _pairs("Zoë=zoe|Chloé=chloe|Hélène=helene|François=francois|Renée=renee|Noël=noel|Amélie=amelie|"
            "Jérôme=jerome|Léa=lea|Gaël=gael|Anaïs=anais|Maëlle=maelle"),
     _pairs("Dubois|Lefèvre=lefevre|Moreau|Girard|Rousseau|Fontaine|Chevalier|Lemaître=lemaitre|"
            "Bélanger=belanger|D'Amboise=damboise|de la Croix=delacroix")),
    (3, "given family",
     _pairs("Jürgen=juergen|Jörg=joerg|Günther=guenther|Käthe=kaethe|Lukas|Lena|Jonas|Anna|Jürgen=juergen"),
     _pairs("Müller=mueller|Schäfer=schaefer|Weiß=weiss|Groß=gross|Köhler=koehler|Schmidt|Becker")),
    (2, "given family",
     _pairs("Björn=bjoern|Åsa=asa|Søren=soren|Ørjan=orjan|Ingrid|Freja|Mikkel"),
     _pairs("Andersson|Kjærgaard=kjaergaard|Lindqvist|Østergaard=ostergaard|Håkansson=hakansson")),
    (1, "given family",
     _pairs("Sigríður=sigridur|Þór=thor|Guðrún=gudrun|Jón=jon"),
     _pairs("Þórsdóttir=thorsdottir|Jónsson=jonsson|Guðmundsdóttir=gudmundsdottir")),
    (8, "given family",
     _pairs("José=jose|María=maria|Sofía=sofia|Ángel=angel|Iñaki=inaki|Núria=nuria|João=joao|"
            "Conceição=conceicao|Lucía=lucia|Martín=martin|Inês=ines|Andrés=andres|Camila|Mateo"),
     _pairs("García=garcia|Martínez=martinez|López=lopez|González=gonzalez|Pérez=perez|Sánchez=sanchez|"
            "Núñez=nunez|Muñoz=munoz|Gonçalves=goncalves|Araújo=araujo|Peña=pena|Ibáñez=ibanez|Silva|"
            "Fernández-Ruiz=fernandezruiz")),
    (2, "given family",
     _pairs("Łukasz=lukasz|Agnieszka|Wojciech|Małgorzata=malgorzata|Jiří=jiri|Zuzana|Tomáš=tomas"),
     _pairs("Kowalski|Wiśniewski=wisniewski|Dvořák=dvorak|Novák=novak|Brzęczyszczykiewicz=brzeczyszczykiewicz")),
    (2, "given family",
     _pairs("Çağla=cagla|Ömer=omer|Şükrü=sukru|Ayşe=ayse|Emre|Elif"),
     _pairs("Yılmaz=yilmaz|Öztürk=ozturk|Şahin=sahin|Çelik=celik|Doğan=dogan")),
    (3, "family given",
     _pairs("Văn An=vanan|Thị Lan=thilan|Minh Anh=minhanh|Đức Huy=duchuy|Ngọc Hân=ngochan"),
     _pairs("Nguyễn=nguyen|Trần=tran|Lê=le|Phạm=pham|Hoàng=hoang|Đặng=dang")),
    (5, "family given",
     _pairs("太郎=taro|花子=hanako|一郎=ichiro|美咲=misaki|健=ken|陽菜=hina|蓮=ren|さくら=sakura"),
     _pairs("山田=yamada|佐藤=sato|鈴木=suzuki|高橋=takahashi|田中=tanaka|渡辺=watanabe|伊藤=ito")),
    (5, "familygiven",
     _pairs("伟=wei|娜=na|敏=min|洋=yang|静=jing|磊=lei|婷=ting|浩然=haoran"),
     _pairs("王=wang|李=li|张=zhang|刘=liu|陈=chen|杨=yang|黄=huang|欧阳=ouyang")),
    (3, "familygiven",
     _pairs("민준=minjun|서연=seoyeon|지훈=jihoon|하은=haeun|도윤=doyoon"),
     _pairs("김=kim|이=lee|박=park|최=choi|정=jung")),
    (5, "given family",
     _pairs("محمد=mohammed|فاطمة=fatima|أحمد=ahmed|ليلى=layla|عمر=omar|مريم=maryam|يوسف=youssef|نور=nour"),
     _pairs("الحسيني=alhusseini|العلي=alali|حداد=haddad|منصور=mansour|الخطيب=alkhatib|عبد الله=abdullah")),
    (3, "given family",
     _pairs("דוד=david|שרה=sarah|יוסף=yosef|נועה=noa|אביגיל=avigail|איתן=eitan"),
     _pairs("כהן=cohen|לוי=levi|מזרחי=mizrahi|פרץ=peretz|ביטון=biton")),
    (2, "given family",
     _pairs("Γιώργος=giorgos|Ελένη=eleni|Νίκος=nikos|Μαρία=maria"),
     _pairs("Παπαδόπουλος=papadopoulos|Οικονόμου=oikonomou|Γεωργίου=georgiou")),
    (3, "given family",
     _pairs("Дмитрий=dmitry|Сергей=sergey|Иван=ivan|Алексей=alexey"),
     _pairs("Смирнов=smirnov|Попов=popov|Шевченко=shevchenko|Кузнецов=kuznetsov")),
    (1, "given family",
     _pairs("Анна=anna|Ольга=olga|Наталья=natalya|Екатерина=ekaterina"),
     _pairs("Иванова=ivanova|Смирнова=smirnova|Кузнецова=kuznetsova|Шевченко=shevchenko")),
    (2, "given family",
     _pairs("प्रिया=priya|आरव=aarav|अनन्या=ananya|राहुल=rahul"),
     _pairs("शर्मा=sharma|पटेल=patel|गुप्ता=gupta|सिंह=singh")),
]
NICKNAMES = ["Bob", "Liz", "Bill", "Kate", "Sam", "Max", "Jo"]
EMOJI = ["🌸", "☕", "🚀", "🐙", "🌍", "✨", "🍵", "🏳️\u200d🌈"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "post.example"]


# ---- helpers --------------------------------------------------------------------------------

def app_constant(service: str, name: str):
    """The value of a module-level constant of an app, read without importing the app."""
    path = SERVICES / service / "app.py"
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"generate.py: no constant {name} in {path}")


def sql_str(value: str) -> str:
    """A standard SQL string literal: quotes doubled, backslashes literal (standard_conforming_strings)."""
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot hold NUL")
    return "'" + value.replace("'", "''") + "'"


def sql_ts(t: dt.datetime) -> str:
    return sql_str(t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}+00")


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sql_inserts(table: str, cols: str, rows: list[str], conflict: str = "ON CONFLICT DO NOTHING") -> str:
    """Multi-row INSERTs of BATCH rows; re-running them changes nothing (rows that exist are kept)."""
    out = []
    for i in range(0, len(rows), BATCH):
        out.append(f"INSERT INTO {table} ({cols}) VALUES\n" + ",\n".join(rows[i:i + BATCH]) + f"\n{conflict};\n")
    return "".join(out)


def sql_file(what: str, body: str, analyze: tuple[str, ...] = ()) -> str:
    head = (f"-- {what}\n-- Generated by seeds/shop/generate.py: do not edit, change the generator.\n"
            "SET standard_conforming_strings = on;\nSET client_encoding = 'UTF8';\n\n")
    return head + body + "".join(f"ANALYZE {t};\n" for t in analyze)


def redis_quote(value: str) -> str:
    """A double-quoted redis-cli argument (its sdssplitargs rules): \\ and \" escaped, control bytes as \\xHH."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def redis_line(command: str, key: str, *values: str) -> str:
    """One redis-cli line: command, bare key, quoted values; checked by splitting it back."""
    assert all(c.isascii() and (c.isalnum() or c in ":-_.") for c in key), key
    line = " ".join([command, key, *map(redis_quote, values)])
    assert split_redis_args(line) == [command, key, *values], line
    return line


def redis_mset(pairs: list[tuple[str, str]]) -> str:
    line = "MSET " + " ".join(f"{k} {redis_quote(v)}" for k, v in pairs)
    assert split_redis_args(line) == ["MSET", *[x for kv in pairs for x in kv]], line[:200]
    return line


def split_redis_args(line: str) -> list[str]:
    """redis-cli's argument splitting (sdssplitargs in sds.c), on text; raises on what it rejects."""
    args, i, n = [], 0, len(line)
    hexdigits, space = "0123456789abcdefABCDEF", " \n\r\t\v\f"  # C isspace(), not str.isspace()
    while True:
        while i < n and line[i] in space:
            i += 1
        if i >= n:
            return args
        cur, inq, insq = [], False, False
        while True:
            if inq:
                if i >= n:
                    raise ValueError("unbalanced double quotes")
                c = line[i]
                if c == "\\" and i + 3 < n and line[i + 1] == "x" and line[i + 2] in hexdigits \
                        and line[i + 3] in hexdigits:
                    cur.append(chr(int(line[i + 2:i + 4], 16)))
                    i += 3
                elif c == "\\" and i + 1 < n:
                    i += 1
                    cur.append({"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}.get(line[i], line[i]))
                elif c == '"':
                    if i + 1 < n and line[i + 1] not in space:
                        raise ValueError("closing quote must be followed by a space")
                    i += 1
                    break
                else:
                    cur.append(c)
            elif insq:
                if i >= n:
                    raise ValueError("unbalanced single quotes")
                c = line[i]
                if c == "\\" and i + 1 < n and line[i + 1] == "'":
                    i += 1
                    cur.append("'")
                elif c == "'":
                    if i + 1 < n and line[i + 1] not in space:
                        raise ValueError("closing quote must be followed by a space")
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n or line[i] in " \n\r\t\0":
                    break
                if line[i] == '"':
                    inq = True
                elif line[i] == "'":
                    insq = True
                else:
                    cur.append(line[i])
            i += 1
        args.append("".join(cur))


def moment(rng: random.Random, start=HISTORY_START, end=HISTORY_END) -> dt.datetime:
    span_ms = int((end - start).total_seconds() * 1000)
    return start + dt.timedelta(milliseconds=rng.randrange(span_ms))


def hexid(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


# ---- the data -------------------------------------------------------------------------------

def products() -> list[tuple[str, str, int]]:
    """(sku, name, price_cents): the catalog's 20 demo products, then generated ones."""
    demo = app_constant("catalog", "DEMO")
    rows = [(f"SKU-{n:04d}", name, price) for n, (name, price) in enumerate(demo, 1)]
    names = {name for _, name, _ in rows} | {name for _, name, _, _ in EDGE_PRODUCTS}
    rng = random.Random(f"{SEED}:products")
    kinds = ["beans"] * 30 + ["blend"] * 8 + ["tea"] * 20 + ["equipment"] * 30 + ["consumable"] * 10 + ["gift"]
    for n in range(len(rows) + 1, N_PRODUCTS + 1):
        for attempt in range(50):
            kind = rng.choice(kinds)
            if kind == "beans":
                origin, size = rng.choice(ORIGINS), rng.choice(BEAN_SIZES)
                name = f"{origin} {rng.choice(PROCESSES)} {rng.choice(ROASTS)} {rng.choice(['beans', 'beans', 'ground'])} {size[0]}"
                base = (rng.randint(14, 30) if origin in PREMIUM_ORIGINS else rng.randint(7, 15))
                price = int(base * size[1]) * 100 + rng.choice([99, 99, 49, 0])
            elif kind == "blend":
                size = rng.choice(BEAN_SIZES)
                if rng.random() < 0.25:
                    size = rng.choice([("capsules x10", 0.5), ("capsules x50", 2.2), ("pods x18", 0.9)])
                form = "" if size[0].startswith(("capsules", "pods")) else rng.choice(["beans ", "ground "])
                name = f"{rng.choice(BLENDS)} {rng.choice(ROASTS)} {form}{size[0]}"
                price = int(rng.randint(6, 12) * size[1]) * 100 + rng.choice([99, 49])
            elif kind == "tea":
                form = rng.choice(TEA_FORMS)
                name = f"{rng.choice(TEAS)} {form[0]}"
                price = max(299, int(rng.randint(5, 24) * form[1]) * 100 + rng.choice([99, 49, 0]))
            elif kind == "equipment":
                item, variants, lo, hi = rng.choice(EQUIPMENT)
                name = f"{rng.choice(BRANDS)} {item} {rng.choice(variants)}, {rng.choice(COLOURS)}"
                price = rng.randint(lo, hi - 1) * 100 + rng.choice([99, 99, 99, 49, 0])
            elif kind == "consumable":
                item, lo, hi = rng.choice(CONSUMABLES)
                name = f"{rng.choice(BRANDS)} {item}"
                price = rng.randint(lo, hi) * 100 - rng.choice([1, 1, 51, 5])
            else:
                amount = rng.choice(GIFT_CARDS)
                name = f"Gift card {amount // 100:.2f} {rng.choice(['🎁', '☕', '🎄', '💝', 'classic', 'birthday'])}"
                price = amount
            if name not in names:
                break
        else:
            name = f"{name} #{n}"
        names.add(name)
        rows.append((f"SKU-{n:04d}", name, price))
    return rows


def stock(catalog: list[tuple[str, str, int]]) -> dict[str, int]:
    """Every product has a row: demo SKU-0001..SKU-0019 100, SKU-0020 0, a few hundred more at 0."""
    rng = random.Random(f"{SEED}:stock")
    qty = {}
    for sku, _, _ in catalog:
        n = int(sku[4:])
        if n <= 20:
            qty[sku] = 0 if n == 20 else 100
        elif rng.random() < OUT_OF_STOCK_SHARE:
            qty[sku] = 0
        elif rng.random() < 0.05:
            qty[sku] = rng.randint(1, 5)
        else:
            qty[sku] = int(rng.triangular(5, 500, 40))
    return qty


def users() -> list[tuple[str, str, str]]:
    """(id, name, email): the users app's 5 demo users, then generated ones."""
    rows = [(f"u-{n}", name, f"{name.split()[0].lower()}@example.com")
            for n, name in enumerate(app_constant("users", "DEMO"), 1)]
    emails = {e for _, _, e in rows} | {e for _, _, e in EDGE_USERS}
    rng = random.Random(f"{SEED}:users")
    weights = [w for w, *_ in CULTURES]
    for n in range(len(rows) + 1, N_USERS + 1):
        _, order, given, family = rng.choices(CULTURES, weights)[0]
        (g, ga), (f, fa) = rng.choice(given), rng.choice(family)
        name = {"given family": f"{g} {f}", "family given": f"{f} {g}", "familygiven": f"{f}{g}"}[order]
        if order == "given family" and g.isascii() and rng.random() < 0.03:
            name = f'{g} "{rng.choice(NICKNAMES)}" {f}'
        if rng.random() < 0.01:
            name = f"{name} {rng.choice(EMOJI)}"
        local = rng.choice([f"{ga}.{fa}", f"{ga}{fa}", f"{ga[0]}{fa}", f"{ga}.{fa}{rng.randint(1, 99)}",
                            f"{fa}.{ga}", f"{ga}_{fa}{rng.randint(70, 99)}"]).lower().replace(" ", "")
        email = f"{local}@{rng.choice(DOMAINS)}"
        while email in emails:
            email = f"{local}{rng.randint(100, 9999)}@{rng.choice(DOMAINS)}"
        emails.add(email)
        rows.append((f"u-{n}", name, email))
    return rows


def history(catalog, user_rows):
    """Past orders (all paid), their reservations and charges, released reservations, old sessions."""
    rng = random.Random(f"{SEED}:orders")
    buyers = [u for u, _, _ in user_rows[5:]]  # generated users only: the demo users have no orders
    buyers_weights = [1 / (i + 10) for i in range(len(buyers))]  # a few customers order a lot
    rng.shuffle(buyers)
    sellable = [(sku, price) for sku, _, price in catalog if 0 < price <= FRAUD_LIMIT and int(sku[4:]) > 20]
    popular = [1 / (i + 25) for i in range(len(sellable))]
    orders, reservations, charges = [], [], []
    for _ in range(N_ORDERS):
        while True:
            picks = rng.choices(sellable, popular, k=rng.choice([1, 1, 1, 2, 2, 3, 4]))
            items, seen = [], set()
            for sku, price in picks:
                if sku not in seen:
                    seen.add(sku)
                    items.append({"sku": sku, "qty": rng.choice([1, 1, 1, 1, 2, 2, 3]), "price_cents": price})
            total = sum(i["qty"] * i["price_cents"] for i in items)
            if total <= FRAUD_LIMIT:
                break
        at = moment(rng)
        order = {"id": "ord_" + hexid(rng, 12), "user_id": rng.choices(buyers, buyers_weights)[0],
                 "status": "paid", "total_cents": total, "charge_id": "ch_" + hexid(rng, 16),
                 "reservation_id": "res_" + hexid(rng, 12), "items": items,
                 "idempotency_key": hexid(rng, 32) if rng.random() < 0.3 else None, "created_at": at}
        orders.append(order)
        reservations.append((order["reservation_id"], order["id"],
                             sorted(({"sku": i["sku"], "qty": i["qty"]} for i in items), key=lambda i: i["sku"]),
                             "reserved", at - dt.timedelta(milliseconds=rng.randint(30, 400))))
        charges.append(charge_record(order, at + dt.timedelta(milliseconds=rng.randint(5, 200))))
    for _ in range(N_RELEASED):  # orders that failed after their stock was reserved
        skus = rng.sample(sellable, rng.choice([1, 1, 2]))
        reservations.append(("res_" + hexid(rng, 12), "ord_" + hexid(rng, 12),
                             sorted(({"sku": s, "qty": rng.choice([1, 2, 6])} for s, _ in skus),
                                    key=lambda i: i["sku"]), "released", moment(rng)))
    orders.sort(key=lambda o: o["created_at"])
    reservations.sort(key=lambda r: r[4])
    sessions = [(hexid(rng, 32), rng.choice(buyers), iso(moment(rng))) for _ in range(N_OLD_SESSIONS)]
    return orders, reservations, charges, sessions


def charge_record(order, at: dt.datetime) -> dict:
    """The JSON payments stores at payments:charge:{id} (same keys, same order)."""
    return {"charge_id": order["charge_id"], "status": "captured", "user_id": order["user_id"],
            "amount_cents": order["total_cents"], "order_id": order["id"],
            "idempotency_key": order["idempotency_key"] or order["id"], "created_at": iso(at)}


# ---- the files ------------------------------------------------------------------------------

def jsonb(value) -> str:
    return sql_str(json.dumps(value, ensure_ascii=False))


def order_row(o) -> str:
    key = sql_str(o["idempotency_key"]) if o["idempotency_key"] else "NULL"
    return (f"({sql_str(o['id'])}, {sql_str(o['user_id'])}, {sql_str(o['status'])}, {o['total_cents']}, "
            f"{sql_str(o['charge_id'])}, {sql_str(o['reservation_id'])}, {jsonb(o['items'])}, {key}, "
            f"{sql_ts(o['created_at'])})")


def reservation_row(r) -> str:
    res_id, order_id, items, status, at = r
    return f"({sql_str(res_id)}, {sql_str(order_id)}, {jsonb(items)}, {sql_str(status)}, {sql_ts(at)})"


def schema_file(service: str) -> str:
    schema = app_constant(service, "SCHEMA").strip()
    return sql_file(f"the tables of {service}, verbatim from stacks/shop/services/{service}/app.py (SCHEMA)",
                    schema.rstrip(";") + ";\n")


def build() -> dict[str, str]:
    catalog = products()
    qty = stock(catalog)
    people = users()
    orders, reservations, charges, old_sessions = history(catalog, people)
    paid_total = sum(i["qty"] * i["price_cents"] for i in PAID_ORDER["items"])
    paid = {**PAID_ORDER, "status": "paid", "total_cents": paid_total, "created_at": PAID_AT}
    prices = {sku: price for sku, _, price in catalog}
    assert all(prices[i["sku"]] == i["price_cents"] for i in paid["items"]), "the paid order's prices drifted"
    paid_charge = charge_record(paid, PAID_AT - dt.timedelta(milliseconds=120))
    out_of_stock = sum(1 for q in qty.values() if q == 0)

    files: dict[str, str] = {}
    product_cols, stock_cols = "sku, name, price_cents", "sku, qty"
    files["catalog-db/001-schema.sql"] = schema_file("catalog")
    files["catalog-db/002-products.sql"] = sql_file(
        f"{len(catalog)} products: SKU-0001..SKU-0020 are the catalog app's demo products, the rest generated",
        sql_inserts("products", product_cols, [f"({sql_str(s)}, {sql_str(n)}, {p})" for s, n, p in catalog]),
        ("products",))
    files["catalog-db/003-edge-cases.sql"] = sql_file(
        "edge cases: a free product, unicode and quote-heavy names, one over the fraud limit, low and no stock",
        sql_inserts("products", product_cols, [f"({sql_str(s)}, {sql_str(n)}, {p})" for s, n, p, _ in EDGE_PRODUCTS]))

    files["inventory-db/001-schema.sql"] = schema_file("inventory")
    files["inventory-db/002-stock.sql"] = sql_file(
        f"stock of every product in catalog-db/002-products.sql: {out_of_stock} of {len(qty)} out of stock "
        "(SKU-0020 and generated ones), SKU-0001..SKU-0019 100 each",
        sql_inserts("stock", stock_cols, [f"({sql_str(s)}, {q})" for s, q in qty.items()]), ("stock",))
    files["inventory-db/003-reservations.sql"] = sql_file(
        f"{len(reservations)} past reservations: one 'reserved' per order in orders-db/002-orders.sql, "
        f"{N_RELEASED} 'released' (failed orders)",
        sql_inserts("reservations", "id, order_id, items, status, created_at",
                    [reservation_row(r) for r in reservations]), ("reservations",))
    files["inventory-db/004-edge-cases.sql"] = sql_file(
        "edge cases: stock of the edge-case products, the reservation of the paid order ord_seed_paid_1",
        sql_inserts("stock", stock_cols, [f"({sql_str(s)}, {q})" for s, _, _, q in EDGE_PRODUCTS])
        + sql_inserts("reservations", "id, order_id, items, status, created_at", [reservation_row(
            (paid["reservation_id"], paid["id"], [{"sku": i["sku"], "qty": i["qty"]} for i in paid["items"]],
             "reserved", PAID_AT - dt.timedelta(milliseconds=250)))]))

    order_cols = "id, user_id, status, total_cents, charge_id, reservation_id, items, idempotency_key, created_at"
    files["orders-db/001-schema.sql"] = schema_file("orders")
    files["orders-db/002-orders.sql"] = sql_file(
        f"{len(orders)} past orders of generated users, all paid (charges in redis/003-charges.redis)",
        sql_inserts("orders", order_cols, [order_row(o) for o in orders]), ("orders",))
    files["orders-db/003-edge-cases.sql"] = sql_file(
        "edge case: ord_seed_paid_1, paid, with an idempotency key (payments' record in redis/004-edge-cases.redis)",
        sql_inserts("orders", order_cols, [order_row(paid)]))

    all_users = people + EDGE_USERS
    user_lines = [redis_line("HSET", f"users:{u}", "id", u, "name", name, "email", email)
                  for u, name, email in people]
    ids = [u for u, _, _ in people]
    user_lines += [redis_line("SADD", "users:ids", *ids[i:i + BATCH]) for i in range(0, len(ids), BATCH)]
    files["redis/001-users.redis"] = "\n".join(user_lines) + "\n"
    files["redis/002-sessions.redis"] = "\n".join(
        redis_line("HSET", f"sessions:{tok}", "user_id", u, "expires_at", exp) for tok, u, exp in old_sessions) + "\n"
    pairs = [(f"payments:charge:{c['charge_id']}", json.dumps(c, ensure_ascii=False)) for c in charges]
    files["redis/003-charges.redis"] = "\n".join(
        redis_mset(pairs[i:i + MSET_BATCH]) for i in range(0, len(pairs), MSET_BATCH)) + "\n"
    edge = [redis_line("HSET", f"users:{u}", "id", u, "name", name, "email", email) for u, name, email in EDGE_USERS]
    edge.append(redis_line("SADD", "users:ids", *[u for u, _, _ in EDGE_USERS]))
    edge += [redis_line("HSET", f"sessions:{tok}", "user_id", u, "expires_at", exp) for tok, u, exp in EDGE_SESSIONS]
    edge.append(redis_line("SET", f"payments:charge:{paid['charge_id']}", json.dumps(paid_charge, ensure_ascii=False)))
    edge.append(redis_line("SET", f"payments:idem:{paid['idempotency_key']}",
                           json.dumps({"status": 201, "body": paid_charge}, ensure_ascii=False)))
    files["redis/004-edge-cases.redis"] = "\n".join(edge) + "\n"

    assert len({u for u, _, _ in all_users}) == len(all_users), "duplicate user ids"
    assert len({s for s, *_ in catalog} | {s for s, *_ in EDGE_PRODUCTS}) == len(catalog) + len(EDGE_PRODUCTS)
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files differ")
    args = parser.parse_args(argv)
    files = build()
    dirs = {HERE / p.split("/")[0] for p in files}
    stale = sorted(str(f.relative_to(HERE)) for d in dirs if d.is_dir() for f in d.iterdir()
                   if f.suffix in (".sql", ".redis") and str(f.relative_to(HERE)) not in files)
    differ = [p for p, text in files.items()
              if not (HERE / p).is_file() or (HERE / p).read_text(encoding="utf-8") != text]
    if args.check:
        for p in differ:
            print(f"seeds/shop/{p}: differs from what generate.py writes", file=sys.stderr)
        for p in stale:
            print(f"seeds/shop/{p}: not written by generate.py (would be applied too)", file=sys.stderr)
        if differ or stale:
            print("run: python3 seeds/shop/generate.py", file=sys.stderr)
            return 1
        print(f"seeds/shop: {len(files)} files up to date")
        return 0
    for p, text in files.items():
        (HERE / p).parent.mkdir(parents=True, exist_ok=True)
        if p in differ:
            (HERE / p).write_text(text, encoding="utf-8")
    for p in stale:
        (HERE / p).unlink()
    for p in files:
        print(f"{(HERE / p).stat().st_size:>9}  seeds/shop/{p}{'  (written)' if p in differ else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
