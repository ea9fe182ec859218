"""Pull numbers with units out of a requirement written in English or Chinese.

    >>> extract("Must run under 50 ms on a T4 with 16GB; accuracy above 95%; 10k images").latency_ms
    50.0

Every finding keeps the text it came from (`evidence`) and whether a bound was stated
(`bounded`: "under", "at least", "以内", "不低于"...), because the scoring rules in
`hooks/planner/scoring.py` grade a bounded number higher than a bare one. Pure regular expressions:
deterministic, no network, no model.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

CJK = re.compile(r"[\u4e00-\u9fff]")
# ASCII word boundaries that also hold next to CJK characters (which count as \w in Python).
A_START, A_END = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"

ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
MULTIPLIERS = {
    "k": 1e3, "thousand": 1e3, "千": 1e3, "m": 1e6, "million": 1e6, "mio": 1e6, "百万": 1e6,
    "万": 1e4, "亿": 1e8, "b": 1e9, "billion": 1e9,
}
NUM = r"(\d[\d,]*(?:\.\d+)?|[零一二两三四五六七八九十百千万亿]+)"
# a number whose thousands are separated by commas ("25,000"), else a plain one ("4.5", "2000")
SEPARATED = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
MULT = r"\s*(k(?![a-z])|thousand|million|mio|m(?![a-z])|billion|千|百万|万|亿)?"
UPPER = r"(under|below|less than|at most|no more than|within|max(?:imum)?|<=?|≤|不超过|不高于|低于|小于|少于|以内|之内|以下|内)"
LOWER = r"(above|over|at least|more than|exceed(?:s|ing)?|minimum|>=?|≥|不低于|不少于|高于|大于|超过|以上|达到)"

GPUS = ["H200", "H100", "A100", "A800", "H800", "A10G", "A10", "A6000", "L40S", "L40", "L4", "V100", "T4", "P100",
        "RTX 4090", "RTX 3090", "RTX 3080", "RTX 2080 Ti", "4090", "3090"]
GPU_MEMORY_GB = {"H200": 141, "H100": 80, "A100": 80, "A800": 80, "H800": 80, "A10G": 24, "A10": 24, "A6000": 48,
                 "L40S": 48, "L40": 48, "L4": 24, "V100": 32, "T4": 16, "P100": 16, "RTX 4090": 24, "RTX 3090": 24,
                 "RTX 3080": 10, "RTX 2080 Ti": 11}


ZH_UNITS = {"十": 10, "百": 100, "千": 1000}
ZH_SECTIONS = {"万": 10_000, "亿": 100_000_000}


def zh_number(text: str) -> float:
    """'十二' -> 12, '两百' -> 200, '三千五百' -> 3500, '一万五千' -> 15000, '两亿' -> 2e8."""
    total, section, current = 0, 0, 0
    for ch in text:
        if ch in ZH_DIGITS:
            current = ZH_DIGITS[ch]
        elif ch in ZH_UNITS:
            section += (current or 1) * ZH_UNITS[ch]
            current = 0
        elif ch in ZH_SECTIONS:
            total += ((section + current) or 1) * ZH_SECTIONS[ch]
            section, current = 0, 0
    return float(total + section + current)


EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
              "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
# a count of days, weeks or months: digits, Chinese numerals, or an English number word ("two weeks", "a month")
COUNT = r"(\d[\d,]*(?:\.\d+)?|[零一二两三四五六七八九十百千万亿]+|(?<![a-z])(?:" + "|".join(EN_NUMBERS) + r"))"


def number(text: str, multiplier: str | None = None) -> float:
    if text.lower() in EN_NUMBERS:
        return float(EN_NUMBERS[text.lower()])
    value = float(text.replace(",", "")) if text[0].isdigit() else zh_number(text)
    return value * MULTIPLIERS.get((multiplier or "").lower(), 1.0)


@dataclass
class Finding:
    """One extracted quantity: value in the canonical unit, the matched text, and whether a bound was stated."""

    value: float
    unit: str
    evidence: str
    bounded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Extraction:
    latency_ms: Finding | None = None
    throughput_per_s: Finding | None = None
    accuracy_pct: Finding | None = None
    f1_pct: Finding | None = None
    error_metric: Finding | None = None          # MAE / RMSE / MAPE target (unit names the metric)
    gpu: str | None = None
    gpu_memory_gb: Finding | None = None
    cpu_only: bool = False
    dataset_size: Finding | None = None
    deadline_days: Finding | None = None
    budget: Finding | None = None                # money (unit: USD, CNY, EUR) or compute (unit: GPU-hours)
    qualitative: list[str] = field(default_factory=list)  # "real-time", "高精度": a wish without a number

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.to_dict() if isinstance(value, Finding) else value
        return out


def _bounded(text: str, start: int, end: int, pattern: str = f"{UPPER}|{LOWER}") -> bool:
    window = text[max(0, start - 24): min(len(text), end + 8)]
    return re.search(pattern, window, re.IGNORECASE) is not None


def _first(pattern: str, text: str) -> re.Match[str] | None:
    return re.search(pattern, text, re.IGNORECASE)


def _error_target(text: str, start: int) -> bool:
    """Whether the number at `start` is an error metric's target ("MAE < 2000元", "RMSE under 1,200 units")."""
    return re.search(r"(?:mae|rmse|mape|mse|误差)[^\d。.;；,，]{0,20}$", text[max(0, start - 24): start], re.IGNORECASE) is not None


def _latency(text: str) -> Finding | None:
    unit_ms = r"(ms|msec|milliseconds?|毫秒)"
    m = _first(NUM + r"\s*" + unit_ms + A_END, text)
    if m:
        return Finding(number(m.group(1)), "ms", m.group(0), _bounded(text, m.start(), m.end()))
    cue = r"(latency|respond|response|inference|per (?:image|request|sample|query)|延迟|时延|响应|推理|每张|单张|每条)"
    for m in re.finditer(NUM + r"\s*(s|sec|seconds?|秒)" + A_END, text, re.IGNORECASE):
        window = text[max(0, m.start() - 30): m.end() + 20]
        if re.search(cue, window, re.IGNORECASE) and not re.search(r"每秒|per second|/s", window):
            return Finding(number(m.group(1)) * 1000.0, "ms", m.group(0), _bounded(text, m.start(), m.end()))
    return None


def _throughput(text: str) -> Finding | None:
    patterns = [
        # "300 images/s", "2,000 transactions per second": any one word (not a data-rate unit) between
        NUM + MULT + r"\s*(?:(?!(?:[kmgt]i?b|bytes?|bits?)\b)[a-z]+\s*|张|条|次|个|帧|笔)?\s*(?:/\s*s(?:ec)?|per second|每秒)" + A_END,
        r"(?:qps|rps|throughput|每秒(?:处理|推理)?)\D{0,12}?" + NUM + MULT,
        NUM + MULT + r"\s*(?:qps|rps)" + A_END,
    ]
    for pattern in patterns:
        m = _first(pattern, text)
        if m:
            return Finding(number(m.group(1), m.group(2)), "samples/s", m.group(0), _bounded(text, m.start(), m.end()))
    return None


def _percent(text: str, cue: str) -> Finding | None:
    after = _first(cue + r"[^\d%。.;；,，]{0,24}?" + r"(\d+(?:\.\d+)?)\s*(%|percent|个百分点)?", text)
    before = _first(r"(\d+(?:\.\d+)?)\s*(%|percent)\s*(?:or (?:better|higher|more)\s*)?(?:top-1\s*)?" + cue, text)
    m = after or before
    if not m:
        return None
    value = float(m.group(1))
    if m.group(2) is None and value <= 1.0:
        value *= 100.0                 # "F1 of 0.9"
    if m.group(2) is None and value > 100:
        return None
    return Finding(round(value, 4), "%", m.group(0), _bounded(text, m.start(), m.end()))


# the Chinese names of the error metrics, longest first ("平均绝对百分比误差" before "百分比误差")
ZH_METRICS = {"平均绝对百分比误差": "MAPE", "平均百分比误差": "MAPE", "百分比误差": "MAPE", "均方根误差": "RMSE",
              "平均绝对误差": "MAE", "绝对误差": "MAE", "均方误差": "MSE"}


def _error_metric(text: str) -> Finding | None:
    """"RMSE under 25,000", "MAPE below 12%", and the Chinese names: "平均绝对误差控制在3以内" (MAE 3),
    "平均百分比误差不超过8%" (MAPE% 8)."""
    names = r"(mape|rmse|mae|mse|smape)" + A_END + "|(" + "|".join(ZH_METRICS) + ")"
    m = _first(A_START + "(?:" + names + r")[^\d]{0,20}?" + SEPARATED + r"\s*(%)?", text)
    if not m:
        return None
    name = m.group(1).upper() if m.group(1) else ZH_METRICS[m.group(2)]
    return Finding(number(m.group(3)), name + ("%" if m.group(4) else ""), m.group(0), _bounded(text, m.start(), m.end()))


def _gpu(text: str) -> tuple[str | None, Finding | None, bool]:
    name = None
    for gpu in GPUS:
        spaced = gpu.replace(" ", r"\s?")
        if re.search(A_START + r"(?:rtx\s?|nvidia\s?|tesla\s?)?" + spaced + r"s?" + A_END, text, re.IGNORECASE):  # "two V100s"
            name = gpu if gpu.startswith(("RTX", "H", "A", "L", "V", "T", "P")) else f"RTX {gpu}"
            break
    memory = None
    m = _first(r"(\d+)\s*(?:gb|gib|g)" + A_END + r"\s*(?:of\s*)?(?:gpu\s*)?(?:显存|memory|vram|gpu|显卡)", text) or _first(
        r"(?:显存|vram|gpu memory)\D{0,6}(\d+)\s*(?:gb|gib|g)" + A_END, text)
    if not m and name:  # "a T4 with 16GB", "A100 80G"
        m = _first(name.split()[-1] + r"[^\d。;；]{0,12}?(\d+)\s*(?:gb|gib|g)" + A_END, text)
    if m:
        memory = Finding(float(m.group(1)), "GB", m.group(0), _bounded(text, m.start(), m.end()))
    cpu_only = bool(_first(
        r"cpu[- ]only|only (?:a |on )?cpus?|no gpu|without (?:a )?gpu|on (?:a |the )?cpu|仅(?:用)?\s*cpu|只有\s*cpu|只能用\s*cpu|只用\s*cpu|没有\s*gpu|无\s*gpu|纯\s*cpu|cpu\s*上",
        text)) and name is None
    return name, memory, cpu_only


DATA_NOUNS = (r"images?|photos?|pictures?|scans?|samples?|examples?|rows?|records?|texts?|reviews?|sentences?|"
              r"documents?|tweets?|emails?|comments?|messages?|articles?|patients?|customers?|transactions?|utterances?|"
              r"listings?|entries|observations?|instances?|tickets?|posts?|clips?|videos?|recordings?|logs?|"
              r"time steps|hours of data|days of data|readings|specimens?|photographs?|cases")
ZH_DATA_NOUNS = r"个时间点|时间点|张|条|行|个样本|样本|篇|份|幅|段|名|位|笔|天的数据|户|例|单|件"
# up to two words between a number and its noun ("12k dermoscopy images", "1.2 million daily sales rows"),
# never a unit or a function word ("20 ms per image" is no data size)
ADJECTIVES = (r"(?:(?!(?:per|of|a|an|the|and|or|to|in|on|at|for|with|from|by|ms|s|sec|seconds?|minutes?|hours?|"
              r"days?|weeks?|months?|years?|[kmgt]i?b)\b)[a-z][\w-]*\s+){0,2}?")
# a count that is not a data size, even with a multiplier ("10k parameters", "$3k credits", "200 classes")
NOT_DATA = (r"(?:parameters?|params|weights|tokens?|dollars?|euros?|usd|eur|credits?|requests?|queries|calls|"
            r"predictions?|users?|visitors?|classes|categories|species|types|labels|intents|features|columns|"
            r"attributes|variables|steps?|epochs?|seconds|minutes|hours?|days?|weeks?|months?|years?|gpus?|cores?|nodes?|"
            r"(?:kilo|milli|centi)?(?:met(?:er|re)s|grams|lit(?:er|re)s)|tons|tonnes|miles|acres|hectares|"
            r"watts|volts|pixels|dimensions|times|qps|rps|tps|fps)")
RATE_AFTER = r"\s*(?:/|per\s+(?:sec|second|minute|hour|day)|a (?:second|minute|day)|每秒|每天|每分钟)"
GPU_AHEAD = (r"\s*(?:nvidia\s*|rtx\s*|tesla\s*)?(?:" + "|".join(re.escape(g) for g in GPUS) + r")(?![A-Za-z0-9])"
             r"|\s*(?:显卡|卡|gpu)")
CLASS_WORDS = r"类别|类|classes|categories"  # "200个类别" counts classes
# a window or a horizon, not the data: "the last 96 readings", "the next 48 time steps", "过去96个时间点"
WINDOW_BEFORE = r"(?:last|past|previous|next|future|following|coming|未来|过去|最近|接下来)\s*$"


def _dataset_size(text: str) -> Finding | None:
    """The number of samples: a known noun ("10k labelled images", "3万张"), or with k/thousand/million any plural
    noun that is not a unit ("45k listings"). Never a rate ("200 images/s"), a GPU count ("一张4090", "V100显卡一张") or a class
    count ("200 classes", "类别大概两百个": 个 alone is no data noun)."""
    any_plural = ADJECTIVES + r"((?!" + NOT_DATA + A_END + r")[a-z][\w-]*s)" + A_END
    patterns = [
        NUM + MULT + r"\+?\s*" + ADJECTIVES + r"(" + DATA_NOUNS + r")" + A_END,
        NUM + r"\s*(k(?![a-z])|thousand|million|mio|m(?![a-z])|billion)\+?\s*" + any_plural,
        # a thousand or more of any plural noun ("40,000 coins", "5,000 labelled questions"); a year is no count
        A_START + r"(\d{1,3}(?:,\d{3})+|[1-9]\d{3,}(?<!1[89]\d\d)(?<!20\d\d))()\+?\s+" + any_plural,
        NUM + MULT + r"\+?\s*(" + ZH_DATA_NOUNS + r")",
        # "27,000 of them", "一共八万块" (块 is a tile or a piece; after 预算 or a price it is money, left to the budget)
        A_START + r"(\d{1,3}(?:,\d{3})+|[1-9]\d{3,}(?<!1[89]\d\d)(?<!20\d\d))()\s+(of them|in (?:total|all))" + A_END,
        r"(?:共|一共|总共|合计)(?:有|约|大约)?\s*" + NUM + MULT + r"\s*(块)",
        r"(?:样本|数据|记录)量?(?:约|大约|共|有|为|是|[:：])*\s*" + NUM + MULT + r"\s*(个)(?!时间点|样本)",  # "样本2500个"
    ]
    found = []
    for pattern in patterns:
        for m in re.finditer(pattern, text, re.IGNORECASE):
            before, after = text[max(0, m.start() - 8): m.start()], text[m.end():]
            value = number(m.group(1), m.group(2))
            if (value < 10 or _error_target(text, m.start())  # "一笔汇款"; "MAE under 50 cases"
                    or (value < 1000 and re.search(WINDOW_BEFORE, before, re.IGNORECASE))  # "the last 96 readings"
                    or re.match(RATE_AFTER, after, re.IGNORECASE) or "每秒" in text[max(0, m.start() - 6): m.start()]
                    or re.search(r"[$€¥￥]\s*$", before)                        # money: "$3k credits"
                    or (m.group(3) == "块" and re.search(r"预算|经费|费用|成本|花费|资金|钱|价", text[max(0, m.start() - 12): m.start()]))
                    or (m.group(3) in ("张", "块", "台") and (re.match(GPU_AHEAD, after, re.IGNORECASE)
                                                         or re.search(r"(?:显卡|卡|gpu)\s*$", before, re.IGNORECASE)))
                    or re.match(r"\s*(?:个)?(?:" + CLASS_WORDS + ")", after, re.IGNORECASE)):
                continue
            found.append(m)
    if not found:
        return None
    m = min(found, key=lambda f: f.start())
    return Finding(number(m.group(1), m.group(2)), "samples", m.group(0), _bounded(text, m.start(), m.end()))


def _deadline(text: str) -> Finding | None:
    """Days until delivery: "within 3 weeks", "in 2 months", "in two weeks", "within a month", "We have about 3 weeks",
    "10 days to get it done",
    "三周内", "两个月时间". Never a horizon or a history ("the next 7 days", "3 months of data")."""
    days = {"day": 1, "days": 1, "天": 1, "week": 7, "weeks": 7, "周": 7, "星期": 7, "个星期": 7, "month": 30,
            "months": 30, "月": 30, "个月": 30}
    lead = (r"(?:within|in|deadline[^\d]{0,10}|due in|needs? to ship in|have|has|got|give|given|allow|allowed|takes?|"
            r"timeline(?: of| is)?|time ?frame(?: of| is)?)\s+(?:(?:about|around|roughly|approximately|only|just|"
            r"at most|up to|no more than)\s+|~\s*)?")
    patterns = [
        lead + COUNT + r"\s*(days?|weeks?|months?)" + A_END + r"(?!-|\s+(?:of|ahead|old|back|history|horizon))",
        COUNT + r"\s*(days?|weeks?|months?)" + A_END + r"(?!-)(?=\s+(?:to (?:deliver|ship|finish|complete|build|get|do|"
        r"launch)|left|until|for (?:the )?(?:project|delivery|first version|prototype)))",
        NUM + r"\s*(?:个)?(半)?(天|周|个星期|星期|个月|月)(?:内|之内|以内|完成|交付|上线|出结果|的时间|时间)",
        r"()(半)(个月|个星期)(?:内|之内|以内|完成|交付|上线|出结果|的时间|时间)",   # "半个月内": half a month
    ]
    for pattern in patterns:
        m = _first(pattern, text)
        if m and not re.search(r"(?:next|last|past|previous|every|per|未来|过去)\s*$", text[max(0, m.start() - 8): m.start()],
                               re.IGNORECASE):
            half = m.re.groups == 3 and m.group(2) == "半"  # "一个半月": a month and a half
            count = (number(m.group(1)) if m.group(1) else 0.0) + (0.5 if half else 0.0)
            return Finding(count * days[m.group(m.re.groups).lower()], "days", m.group(0), True)
    return None


def _budget(text: str) -> Finding | None:
    m = _first(r"(\d[\d,]*(?:\.\d+)?|[零一二两三四五六七八九十百千]+)" + MULT
               + r"\s*(?:个\s*)?(?:gpu[- ]?hours?|gpu\s*小时|gpu\s*时|卡时|卡·时|卡小时)", text)
    if m:
        return Finding(number(m.group(1), m.group(2)), "GPU-hours", m.group(0), _bounded(text, m.start(), m.end()))
    money = [
        (r"(?:\$|usd\s*|us\$)\s*(\d[\d,]*(?:\.\d+)?)" + MULT, "USD"),
        (r"(\d[\d,]*(?:\.\d+)?)" + MULT + r"\s*(?:usd|dollars|美元|美金)", "USD"),
        (r"(?:€|eur\s*)\s*(\d[\d,]*(?:\.\d+)?)" + MULT, "EUR"),
        (r"(\d[\d,]*(?:\.\d+)?)" + MULT + r"\s*(?:euros?|eur)" + A_END, "EUR"),
        (r"(?:¥|￥|rmb\s*|cny\s*)\s*(\d[\d,]*(?:\.\d+)?)" + MULT, "CNY"),
        (r"(\d[\d,]*(?:\.\d+)?)" + MULT + r"\s*(?:元|块|rmb|cny|人民币)", "CNY"),
    ]
    for pattern, currency in money:
        for m in re.finditer(pattern, text, re.IGNORECASE):
            rate = re.match(r"\s*(?:(?:per|an?|each)\s+|/\s*|每)(?!gpu|month|year)[a-z\u4e00-\u9fff]", text[m.end():],
                            re.IGNORECASE)
            if not _error_target(text, m.start()) and not rate:  # a price per unit ("800 dollars per acre") is no budget
                return Finding(number(m.group(1), m.group(2)), currency, m.group(0), True)
    return None


QUALITATIVE = {
    "latency": r"real[- ]time|low[- ]latency|fast inference|quickly|实时|低延迟|快速响应|秒级|毫秒级",
    "accuracy": r"high(?:ly)? accura|as accurate as possible|high precision|robust|高精度|高准确|准确率高|尽量准",
    "throughput": r"high throughput|at scale|large volume|高吞吐|高并发|大批量",
    "budget": r"cheap|low cost|limited budget|预算有限|低成本|省钱",
    "deadline": r"asap|as soon as possible|urgent|尽快|紧急|马上",
}


def extract(text: str) -> Extraction:
    """Every quantity the offline planner understands, in canonical units (ms, %, samples/s, GB, days)."""
    found = Extraction()
    found.throughput_per_s = _throughput(text)
    rest = text.replace(found.throughput_per_s.evidence, " ") if found.throughput_per_s else text
    found.latency_ms = _latency(rest)
    found.accuracy_pct = _percent(text, r"(?:top-1 accuracy|accuracy|acc|准确率|正确率|精度|精确度|识别率|准确度)")
    found.f1_pct = _percent(text, r"(?:macro[- ]f1|f1[- ]score|f1)")
    found.error_metric = _error_metric(text)
    found.gpu, found.gpu_memory_gb, found.cpu_only = _gpu(text)
    found.dataset_size = _dataset_size(text)
    found.deadline_days = _deadline(text)
    found.budget = _budget(text)
    found.qualitative = [name for name, pattern in QUALITATIVE.items() if re.search(pattern, text, re.IGNORECASE)]
    return found


def language(text: str) -> str:
    """'zh' when at least 20% of the non-space characters are CJK, else 'en'."""
    chars = [c for c in text if not c.isspace()]
    return "zh" if chars and sum(bool(CJK.match(c)) for c in chars) / len(chars) >= 0.2 else "en"


# The data's language when the requirement names it: "Chinese reviews", "英文邮件", "中英混合的评论".
NAMED_ZH = r"chinese|mandarin|cantonese|中文|汉语|华语|普通话|粤语|简体|繁体"
NAMED_EN = r"english|英文|英语"
NAMED_MULTI = r"multi-?lingual|bi-?lingual|multiple languages|mixed[- ]language|code-?switch|多语言|多语种|双语|中英|混合语言"


def text_language(text: str) -> str:
    """The language of the texts a text model will read: 'zh', 'en' or 'multi' (mixed Chinese and English).

    `language()` says which language the requirement is written in (en or zh only), which is what the
    clarification questions use. The data's language is what picks a pretrained text encoder, so:

    1. a named language decides: a multilingual cue, or both Chinese and English named, is 'multi';
       Chinese alone 'zh'; English alone 'en' ("classify English support emails" in Chinese is 'en');
    2. else the requirement's own script: 'multi' when each script holds at least a quarter of its
       words (a Latin word of 2+ letters is one word, two CJK characters are one), else `language()`.
       a GPU's name or a metric's ("A100", "RTX 4090", "F1") does not tip it: "判断商品评论情感，用一张A100" is 'zh'.
    """
    multi, zh, en = (re.search(p, text, re.IGNORECASE) is not None for p in (NAMED_MULTI, NAMED_ZH, NAMED_EN))
    if multi or (zh and en):
        return "multi"
    if zh or en:
        return "zh" if zh else "en"
    latin, cjk = len(re.findall(r"[A-Za-z]{2,}", text)), len(CJK.findall(text)) / 2
    if latin and cjk and min(latin, cjk) / (latin + cjk) >= 0.25:
        return "multi"
    return language(text)
