"""Creative review under the Advertising Law (matching/ad_review.py, matching/data/ad_law.tsv): real
ad sentences for every rule, ordinary phrases that must pass, script and width variants, scopes,
licensed classes by keyword and by IAB category, and the data file itself."""

from __future__ import annotations

import re

import opencc
import pytest

from matching.ad_review import DATA_FILE, load_rules, parse_rules, review_ad, rules_by_id
from matching.categories import load_taxonomy
from matching.text import to_simplified

# (rule, sentence as an advertiser would write it, the term that must be found)
FLAGGED = [
    ("absolute_terms", "国家级非遗传承人手工炒制，匠心好茶", "国家级"),
    ("absolute_terms", "世界级音效，影院般的享受", "世界级"),
    ("absolute_terms", "采用最高级的天然原料", "最高级"),
    ("absolute_terms", "独一无二的设计，彰显品味", "独一无二"),
    ("absolute_terms", "极致体验，一触即达", "极致"),
    ("absolute_terms", "顶级食材，现点现做", "顶级"),
    ("absolute_terms", "极品大红袍，限量发售", "极品"),
    ("absolute_terms", "万能充电器，一个顶十个", "万能"),
    ("absolute_superlative", "年度最佳选择，口碑之作", "最佳"),
    ("absolute_superlative", "全网最低价，错过再等一年", "最低价"),
    ("absolute_superlative", "最好的手机，就选它", "最好"),
    ("absolute_superlative", "这款洗发水效果最好。", "最好"),
    ("absolute_superlative", "最受欢迎的火锅底料", "最受欢迎"),
    ("absolute_superlative", "全城最便宜的搬家公司", "最便宜"),
    ("absolute_first", "全国销量第一的净水器", "销量第一"),
    ("absolute_first", "连续五年行业第一", "行业第一"),
    ("absolute_first", "中国第一品牌空调", "中国第一"),
    ("absolute_first", "空调第一品牌，省电更安静", "第一品牌"),
    ("absolute_first", "NO.1的咖啡连锁", "no.1"),
    ("absolute_first", "热销榜TOP1", "top1"),
    ("absolute_unique", "全国唯一获得认证的品牌", "全国唯一"),
    ("absolute_unique", "送礼首选，体面大方", "首选"),
    ("absolute_unique", "本市唯一指定经销商", "唯一指定"),
    ("medical_guarantee", "祖传秘方，一次根治鼻炎", "根治"),
    ("medical_guarantee", "纯中药配方，无副作用", "无副作用"),
    ("medical_guarantee", "药到病除，安全放心", "药到病除"),
    ("medical_guarantee", "无效退款，永不复发", "无效退款"),
    ("medical_rate", "临床治愈率高达95%", "治愈率"),
    ("medical_rate", "百分百有效，三天见效", "百分百有效"),
    ("medical_claim", "这款牙膏有显著疗效，可消炎止痛", "疗效"),
    ("medical_claim", "富硒茶，饮用可降血压降血脂", "降血压"),
    ("medical_claim", "排毒养颜胶囊糖果", "排毒"),
    ("education_guarantee", "会计证考试包过，不过全额退款", "包过"),
    ("education_guarantee", "会计证考试包过，不过全额退款", "不过全额退款"),
    ("education_guarantee", "驾照保过班，三周拿证", "保过"),
    ("education_guarantee", "通过率100%，名师小班教学", "通过率100%"),
    ("education_guarantee", "保证录取，名校直通车", "保证录取"),
    ("education_guarantee", "学完包就业，月薪过万", "包就业"),
    ("education_insider", "命题专家亲自授课", "命题专家"),
    ("education_insider", "考前押题，直击考点", "押题"),
    ("investment_guarantee", "保本保息，稳赚不赔", "保本"),
    ("investment_guarantee", "保本保息，稳赚不赔", "稳赚"),
    ("investment_guarantee", "年化收益保证8%，随存随取", "年化收益保证"),
    ("investment_guarantee", "承诺收益，每月分红", "承诺收益"),
    ("investment_guarantee", "加盟奶茶店，躺赚每一天", "躺赚"),
    ("investment_risk_free", "投资零风险，收益看得见", "零风险"),
    ("investment_risk_free", "黄金理财，无风险高回报", "无风险"),
]

LICENCES = [
    ("licence_medical", "美莱医疗美容医院，双眼皮限时特惠", "医疗美容"),
    ("licence_medical", "种植牙每颗3980元", "种植牙"),
    ("licence_drugs", "999感冒灵，非处方药", "非处方药"),
    ("licence_drugs", "进口保健品，增强免疫力", "保健品"),
    ("licence_finance", "稳健理财产品，起投1000元", "理财"),
    ("licence_finance", "信用卡免年费，开卡送礼", "信用卡"),
    ("licence_finance", "重疾保险，一年只要几百元", "保险"),
    ("licence_education", "考研政治冲刺班，名师授课", "考研"),
    ("licence_education", "雅思托福一对一", "雅思"),
]

# Ordinary phrases: none may be flagged (the false-positive checks of the issue, and more).
ORDINARY = [
    "本店最近上新，欢迎选购", "第一次购买立减10元", "开业第一天全场八折", "第一步：注册账号", "首批用户第一时间体验",
    "最后一天！清仓大甩卖", "您最好提前预约，以免排队", "最高可贷80万，最多省200元", "最低首付两成",
    "最新款羽绒服到货", "最初的梦想，最美的风景", "确保过程安全可控", "面包过期不卖，天天新鲜", "保本价清仓，数量有限",
    "零风险试用七天，不满意包退", "顶级域名注册，.com 仅需55元", "万能胶水，粘得牢", "万用表、万能表批发",
    "保险柜特价，家用办公两相宜", "公积金贷款可用，首付20%起", "最佳赏味期30天，请尽快食用", "只不过退款需要三个工作日",
    "治愈系插画课，画出好心情", "打包过来的外卖依然热乎", "3G手机套餐 长话市话漫游一个价", "全国通话不分长市漫，月租低至18元",
    "滨江府开盘 首付20%起", "地铁口精装新房，公积金贷款可用", "病虫害防治服务", "hotcakes and pancakes",
    "全场支持信用卡支付，包邮到家", "儿童基金会公益义卖",
]


def rules_found(title: str, **kw: object) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in review_ad(title, **kw):  # type: ignore[arg-type]
        out.setdefault(f.rule, []).append(f.term)
    return out


@pytest.mark.parametrize(("rule", "sentence", "term"), FLAGGED + LICENCES)
def test_each_rule_flags_real_ad_sentences(rule, sentence, term):
    """A sentence breaking a rule is flagged with that rule, its article and the term found."""
    found = rules_found(sentence)
    assert term in found.get(rule, []), found
    [finding] = [f for f in review_ad(sentence) if f.rule == rule and f.term == term]
    assert finding.field == "title" and finding.article == rules_by_id()[rule].article
    assert finding.reason_zh and finding.reason_en


@pytest.mark.parametrize("sentence", ORDINARY)
def test_ordinary_phrases_are_not_flagged(sentence):
    """最近, 第一次, 最后, 最好提前, 保本价, 顶级域名 … are ordinary words: no finding."""
    assert review_ad(sentence, sentence, [sentence]) == ()


_t2s = opencc.OpenCC("s2t")


@pytest.mark.parametrize(("rule", "sentence", "term"), FLAGGED)
def test_traditional_and_full_width_variants_are_found_alike(rule, sentence, term):
    """The same claim written in Traditional characters, or with full-width Latin letters, digits
    and punctuation, is found as the Simplified half-width one."""
    traditional = _t2s.convert(sentence)
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in sentence)
    for variant in (traditional, full_width):
        assert term in rules_found(variant).get(rule, []), (variant, rules_found(variant))


def test_spaces_and_separators_do_not_hide_a_term():
    """最 佳, 包-过 and 国·家·级 are found: the text is also matched with separators removed."""
    assert rules_found("年度最 佳之选") == {"absolute_superlative": ["最佳"]}
    assert "education_guarantee" in rules_found("考证包-过")
    assert "absolute_terms" in rules_found("国·家·级品质")


def test_every_field_is_reviewed_and_named():
    """Title, description and each keyword are read; each finding names its field; a term split
    between two keywords is not a term."""
    fs = review_ad("好茶", "国家级非遗工艺", ["最佳", "茶叶"])
    assert {(f.rule, f.field) for f in fs} == {("absolute_terms", "description"), ("absolute_superlative", "keywords")}
    assert review_ad("好茶", "", ["销量", "第一"]) == ()  # 销量 | 第一 are two keywords


def test_medical_terms_are_a_claim_only_outside_medical_ads():
    """疗效 in a toothpaste ad breaks Art. 17; in a hospital's ad it is not an Art. 17 claim, but the
    hospital ad needs licence review; guarantees of cure break Art. 16 in either."""
    assert "medical_claim" in rules_found("牙膏疗效好")
    hospital = rules_found("口腔医院 种植牙治疗")
    assert "medical_claim" not in hospital and "licence_medical" in hospital
    assert "medical_guarantee" in rules_found("口腔医院 种植牙 永不复发")


def test_risk_free_is_a_claim_only_in_investment_ads():
    """零风险 breaks Art. 25 when the ad is about investing (any field), not in a trial offer."""
    assert rules_found("零风险试用") == {}
    assert "investment_risk_free" in rules_found("零风险", description="黄金投资，稳健回报")


def test_licensed_classes_by_iab_target_category():
    """An ad targeting a medical, drug, finance or education IAB category needs licence review, named
    by its category id, even when its text says nothing of it."""
    fs = review_ad("春季特惠", "", ["优惠"], ["286", "410", "148", "1"])
    assert {(f.rule, f.term, f.field) for f in fs} == {
        ("licence_medical", "286", "target_categories"), ("licence_finance", "410", "target_categories"),
        ("licence_education", "148", "target_categories")}


def test_every_node_of_the_licensed_iab_branches_is_covered():
    """Every node of the taxonomy file under Medical Health (286), Personal Finance (391, taxes
    aside) and Education (132) needs licence review when targeted, and every IAB id a rule names
    exists in the taxonomy."""
    tax = load_taxonomy()
    covered = {c for r in load_rules() if r.kind == "licence" for c in r.categories}
    assert covered <= {c.id for c in tax}, covered - {c.id for c in tax}
    for root in ("286", "391", "132"):
        branch = {c.id for c in tax if tax.root(c.id).id == root} - {"415"}  # 415 Personal Taxes
        assert branch <= covered, (root, branch - covered)
        for node in branch:
            assert review_ad("春季特惠", target_categories=[node]), node


def test_one_licence_finding_per_class_and_field():
    """Several words of one licensed class in one field are one finding."""
    fs = review_ad("考研 考公 雅思 托福 培训")
    assert [(f.rule, f.field) for f in fs] == [("licence_education", "title")]


def test_the_data_file_is_well_formed():
    """Every rule has an article and both reasons; regex rules are written in Simplified Chinese
    (they run on normalised text); every claim scope names a context or class that exists."""
    rules = load_rules()
    names = {r.scope for r in rules if r.kind != "claim"}
    for r in rules:
        assert r.kind == "context" or (r.article and r.reason_zh and r.reason_en), r.id
        if r.pattern is not None:
            assert to_simplified(r.pattern.pattern) == r.pattern.pattern, r.id
        if r.kind == "claim" and ":" in r.scope:
            assert set(r.scope.split(":")[1].split(",")) <= names, r.id
    assert {r.article.split("(")[0] for r in rules if r.kind != "context"} >= {"9", "16", "17", "24", "25", "46"}


def test_a_malformed_rule_line_is_refused_with_its_line():
    """A rule line with a missing column or an unknown kind names itself."""
    with pytest.raises(ValueError, match="line 2: 3 columns"):
        parse_rules("rule\tarticle\tkind\tscope\tpattern\tzh\ten\nx\t9\tclaim\n")
    with pytest.raises(ValueError, match="kind 'banned'"):
        parse_rules("h\nx\t9\tbanned\tall\t最佳\t理由\treason\n")
    assert re.search("ad_law", DATA_FILE)
