"""The demo district, modelled on the Zhenjiang New District pilot, built reproducibly from a seed.

Pure module: it returns plain data (lists of dicts) that `servicehub demo build` writes to
seed_data/demo/ and `servicehub seed demo` loads. Names of people are fictitious.
"""

from __future__ import annotations

import random

from servicehub.registry.identifiers import credit_code_check_char

DEMO_SEED = 20240601
DISTRICT = {"code": "321191", "name_zh": "镇江新区", "name_en": "Zhenjiang New District", "lat": 32.190, "lon": 119.660}

# (code suffix, name_zh, name_en, centroid lat, lon)
TOWNS = [
    ("001", "大港街道", "Dagang Subdistrict", 32.205, 119.685),
    ("002", "丁卯街道", "Dingmao Subdistrict", 32.155, 119.520),
    ("003", "丁岗镇", "Dinggang Town", 32.170, 119.640),
    ("004", "大路镇", "Dalu Town", 32.215, 119.760),
    ("005", "姚桥镇", "Yaoqiao Town", 32.245, 119.815),
]

# (name_zh, name_en, short name)
ORGANISATIONS = [
    ("镇江新区乐龄居家养老服务中心", "Leling Home Care Centre", "乐龄居家"),
    ("镇江新区阳光社会工作服务社", "Sunshine Social Work Agency", "阳光社工"),
    ("镇江新区康宁康复服务中心", "Kangning Rehabilitation Centre", "康宁康复"),
    ("镇江新区同心残疾人服务中心", "Tongxin Disability Services", "同心助残"),
    ("镇江新区童心儿童关爱服务中心", "Tongxin Children's Care Centre", "童心关爱"),
    ("镇江新区暖心助餐服务社", "Nuanxin Meal Service", "暖心助餐"),
    ("镇江新区安馨心理咨询服务中心", "Anxin Counselling Centre", "安馨心理"),
    ("镇江新区和美家政服务社", "Hemei Home Services", "和美家政"),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅建国志强文斌海燕淑珍春梅德明桂芳"


def fake_name(rng: random.Random) -> str:
    """A fictitious Chinese name."""
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def fake_mobile(rng: random.Random) -> str:
    """A fictitious mainland mobile number."""
    return rng.choice(["138", "139", "150", "151", "158", "177", "186", "189"]) + f"{rng.randrange(10**8):08d}"


def credit_code(area_code: str, serial: int) -> str:
    """A valid unified social credit code of a civil-affairs-registered organisation (52…)."""
    body = f"52{area_code}MJ{serial:07d}"
    return body + credit_code_check_char(body)


def build_areas() -> list[dict]:
    """The district and its towns (communities follow with the registry)."""
    areas = [
        {"code": DISTRICT["code"], "name_zh": DISTRICT["name_zh"], "name_en": DISTRICT["name_en"],
         "level": "district", "parent": None, "lat": DISTRICT["lat"], "lon": DISTRICT["lon"]}
    ]
    for suffix, name_zh, name_en, lat, lon in TOWNS:
        areas.append({"code": DISTRICT["code"] + suffix, "name_zh": name_zh, "name_en": name_en,
                      "level": "town", "parent": DISTRICT["code"], "lat": lat, "lon": lon})
    return areas


def build_organisations(rng: random.Random) -> list[dict]:
    """The contracted social organisations."""
    organisations = []
    for serial, (name_zh, name_en, short) in enumerate(ORGANISATIONS, start=1):
        town = TOWNS[(serial - 1) % len(TOWNS)]
        organisations.append({
            "credit_code": credit_code(DISTRICT["code"], serial * 1001),
            "name_zh": name_zh,
            "name_en": name_en,
            "short_name": short,
            "legal_representative": fake_name(rng),
            "contact_name": fake_name(rng),
            "contact_phone": fake_mobile(rng),
            "address": f"{DISTRICT['name_zh']}{town[1]}{rng.randint(1, 300)}号",
            "status": "active",
        })
    return organisations


def build_demo(seed: int = DEMO_SEED) -> dict[str, list[dict]]:
    """The whole demo district as plain data, the same for the same seed."""
    rng = random.Random(seed)
    return {"areas": build_areas(), "organisations": build_organisations(rng)}
