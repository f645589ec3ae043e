"""Tests for emovox.corpora: every adapter on a tiny synthetic copy of its real layout, then
detection, spec parsing, errors, and (marked ``corpora``) the real development corpora."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from emovox.corpora import ADAPTERS, detect, parse_spec, scan_corpus
from emovox.corpora.manifest import summarize
from emovox.errors import CorpusError

# --- synthetic layouts: build(root, write) creates the files under root -------------------


def build_ravdess(root, write):
    write(root / "Actor_01" / "03-01-05-02-01-01-01.wav")
    write(root / "Actor_02" / "03-01-02-01-02-02-02.flac")
    write(root / "Actor_02" / "03-01-08-01-01-01-02.WAV")
    write(root / "Actor_01" / "03-02-05-02-01-01-01.wav")  # song: skipped
    write(root / "Actor_01" / "01-01-05-02-01-01-01.wav")  # audio-video: skipped
    (root / "Actor_01" / "notes.txt").write_text("x")


def build_nemo(root, write, rows=None):
    rows = rows or [
        ("KS0_anger_1.wav", "anger", "Ala ma kota.", "KS0", "male"),
        ("EB0_happiness_2.wav", "happiness", "Zażółć gęślą jaźń.", "EB0", "female"),
        ("EB0_neutral_3.wav", "neutral", "Dzień dobry.", "EB0", "female"),
        ("EB0_surprised_4.wav", "surprised", "Co?", "EB0", "female"),  # audio missing
    ]
    lines = ["file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"]
    lines += [f"{f}\t{e}\t{t}\t{t.lower()}\t        {s}\t{g}\t23" for f, e, t, s, g in rows]
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write(root / "samples" / "KS0_anger_1.flac")
    write(root / "samples" / "EB0_happiness_2.wav")
    write(root / "samples" / "EB0_neutral_3.flac")


def build_turev(root, write):
    src = root / "Sound Source"
    write(src / "Angry" / "1157_kz_acik.wav")
    write(src / "Calm" / "1234_hl_cay.flac")
    write(src / "Sad" / "1234_mt_son_kez.wav")
    write(src / "Other" / "1234_mt_yok.wav")  # not an emotion folder: skipped
    write(src / "Happy" / "bad.wav")  # name does not fit: skipped


def build_emodb(root, write):
    write(root / "wav" / "03a01Fa.wav")
    write(root / "wav" / "08b02Lb.flac")
    write(root / "wav" / "16a07Wc.wav")
    write(root / "wav" / "readme.wav")  # name does not fit: skipped


def build_emovo(root, write):
    write(root / "f1" / "dis-f1-b1.wav")
    write(root / "m2" / "gio-m2-l3.flac")
    write(root / "m2" / "pau-m2-n5.wav")
    (root / "documents").mkdir()
    (root / "documents" / "info.txt").write_text("x")


def build_cremad(root, write, demographics=True):
    write(root / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    write(root / "AudioWAV" / "1002_IEO_HAP_HI.flac")
    write(root / "AudioWAV" / "1002_TSI_CAL_LO.wav")  # not a CREMA-D emotion: skipped
    if demographics:
        (root / "VideoDemographics.csv").write_text(
            "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
            "1002,21,Female,Caucasian,Not Hispanic\n")


def build_tess(root, write):
    write(root / "OAF_angry" / "OAF_back_angry.wav")
    write(root / "YAF_pleasant_surprised" / "YAF_bath_ps.wav")
    write(root / "OAF_Pleasant_surprise" / "OAF_chair_pleasant_surprise.wav")
    write(root / "YAF_neutral" / "YAF_dog_neutral.flac")
    write(root / "YAF_calm" / "YAF_dog_calm.flac")  # not a TESS emotion: skipped


def build_savee(root, write):
    write(root / "AudioData" / "DC" / "a01.wav")
    write(root / "AudioData" / "JE" / "sa03.wav")
    write(root / "AudioData" / "JK" / "su12.flac")
    write(root / "AudioData" / "KL" / "n01.wav")
    (root / "AudioData" / "Info.txt").write_text("x")


def build_urdu(root, write):
    write(root / "Angry" / "SM1_F1_A01.wav")
    write(root / "Sad" / "SF3_F12_S070.flac")
    write(root / "Neutral" / "SM27_F3_N05.wav")


_EVAL = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
A-E1:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M000\tfru\t[2.5000, 3.5000, 3.5000]

[14.8872 - 18.0175]\tSes01F_impro01_F001\texc\t[4.0000, 3.5000, 3.0000]

[20.0000 - 21.0000]\tSes01F_impro01_M001\tang\t[1.5000, 4.0000, 4.0000]
"""


def build_iemocap(root, write):
    s1 = root / "Session1"
    ev = s1 / "dialog" / "EmoEvaluation"
    ev.mkdir(parents=True)
    (ev / "Ses01F_impro01.txt").write_text(_EVAL)
    (ev / "Categorical").mkdir()
    (ev / "Categorical" / "Ses01F_impro01_e2_cat.txt").write_text(
        "Ses01F_impro01_F000 :Anger; ()\n")  # per-annotator file: ignored
    tr = s1 / "dialog" / "transcriptions"
    tr.mkdir(parents=True)
    (tr / "Ses01F_impro01.txt").write_text(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\n"
        "Ses01F_impro01_M000 [010.0100-011.3925]: Do you have your forms?\n")
    wav = s1 / "sentences" / "wav" / "Ses01F_impro01"
    for utt in ("F000", "M000", "F001"):  # M001 has no audio: skipped
        write(wav / f"Ses01F_impro01_{utt}.wav")
    s2 = root / "Session2"
    (s2 / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (s2 / "dialog" / "EmoEvaluation" / "Ses02M_script01_1.txt").write_text(
        "[1.0 - 2.0]\tSes02M_script01_1_F012\tsad\t[2.0, 2.0, 2.0]\n")
    write(s2 / "sentences" / "wav" / "Ses02M_script01_1" / "Ses02M_script01_1_F012.flac")


def build_folder(root, write):
    write(root / "happy" / "spk1_a.wav")
    write(root / "Angry" / "sub" / "spk2-b.flac")
    write(root / "joy" / "spk3_c.wav")
    write(root / "docs" / "x.wav")


def build_koetts(root, write):
    base = root / "Dataset" / "SpeechCorpus" / "Emotional" / "emotional-to-emotional"
    write(base / "ema" / "wav" / "ema00001.wav")
    write(base / "ema" / "wav" / "ema00150.flac")
    (base / "ema" / "transcript").mkdir(parents=True)
    (base / "ema" / "transcript" / "ema00150.txt").write_text("좋은 아침이에요.\n", encoding="utf-8")
    write(base / "nea" / "wav" / "nea00250.wav")
    write(base / "nea" / "wav" / "nea00400.wav")
    write(base / "nea" / "wav" / "nea00401.wav")  # beyond the four ranges: skipped
    write(base / "nea" / "wav" / "ema00002.wav")  # speaker folder and name disagree: skipped


def build_emospeech(root, write):
    write(root / "Metro" / "help-safe-fearful-20190710134657-d14a028c2a3a2bc9476102bb.wav")
    write(root / "Roads" / "go-scream-angry-20190710135028-0e17afa39fc0ef15a8.wav")
    write(root / "Roads" / "no-safe-calm-20190710135029-0e17afa39fc0ef15a8.wav")
    write(root / "Metro" / "background-safe-calm-20190710134940-d14a028c2a3a2b.wav")  # not speech
    write(root / "Metro" / "unknown-safe-happy-20190710134940-d14a028c2a3a2b.wav")  # not speech
    write(root / "Roads" / "stop-safe-None-20190710134953-0e17afa39fc0ef15a8.wav")  # unlabelled


def build_baved(root, write):
    root.mkdir(parents=True, exist_ok=True)
    (root / "speakers_info.json").write_text('{"56": {"age": 40, "gender": "f"}}')
    write(root / "3" / "56-f-40-3-1-884.wav")
    write(root / "3" / "56-f-40-3-0-885.wav")  # low arousal: dropped by default
    write(root / "0" / "47-m-20-0-2-966.wav")  # high arousal: dropped by default
    write(root / "0" / "47-m-20-0-1-967.flac")


def build_banglaser(root, write):
    write(root / "complete" / "Actor - 35" / "03-01-06-01-04-03-35.wav")
    write(root / "complete" / "Actor - 35" / "03-01-07-02-05-01-35.wav")
    write(root / "complete" / "Actor - 02" / "03-01-09-02-05-01-02.wav")  # unknown code: skipped


BUILDERS = {
    "koetts": build_koetts, "emospeech": build_emospeech, "baved": build_baved,
    "banglaser": build_banglaser,
    "ravdess": build_ravdess, "nemo": build_nemo, "turev": build_turev, "emodb": build_emodb,
    "emovo": build_emovo, "cremad": build_cremad, "tess": build_tess, "savee": build_savee,
    "urdu": build_urdu, "iemocap": build_iemocap, "folder": build_folder,
}


def rows(utts, *fields):
    return [tuple(getattr(u, f) for f in fields) for u in utts]


def names(utts):
    return [Path(u.path).name for u in utts]


# --- adapters --------------------------------------------------------------------------------


def test_ravdess(tmp_path, write_audio):
    build_ravdess(tmp_path, write_audio)
    utts = scan_corpus("ravdess", tmp_path)
    assert names(utts) == ["03-01-05-02-01-01-01.wav", "03-01-02-01-02-02-02.flac",
                           "03-01-08-01-01-01-02.WAV"]
    assert rows(utts, "label", "native_label", "speaker", "gender", "language") == [
        ("angry", "05", "01", "male", "en"), ("calm", "02", "02", "female", "en"),
        ("surprise", "08", "02", "female", "en")]
    assert utts[1].transcript == "Dogs are sitting by the door."
    assert all(Path(u.path).is_absolute() and u.corpus == "ravdess" for u in utts)


def test_nemo(tmp_path, write_audio):
    build_nemo(tmp_path, write_audio)
    utts = scan_corpus("nemo", tmp_path)
    assert names(utts) == ["EB0_happiness_2.wav", "EB0_neutral_3.flac", "KS0_anger_1.flac"]
    assert rows(utts, "label", "native_label", "speaker", "gender", "language") == [
        ("happy", "happiness", "EB0", "female", "pl"),
        ("neutral", "neutral", "EB0", "female", "pl"),
        ("angry", "anger", "KS0", "male", "pl")]
    assert utts[0].transcript == "Zażółć gęślą jaźń."


def test_nemo_errors(tmp_path, write_audio):
    many_missing = [(f"KS0_anger_{i}.wav", "anger", "x", "KS0", "male") for i in range(2, 12)]
    build_nemo(tmp_path / "a", write_audio, rows=many_missing + [
        ("KS0_anger_1.wav", "anger", "x", "KS0", "male")])
    with pytest.raises(CorpusError, match="audio missing for 10 of 11"):
        scan_corpus("nemo", tmp_path / "a")
    (tmp_path / "b").mkdir()
    with pytest.raises(CorpusError, match="data.tsv"):
        scan_corpus("nemo", tmp_path / "b")
    (tmp_path / "b" / "data.tsv").write_text("file_id\temotion\nx.wav\tanger\n")
    with pytest.raises(CorpusError, match="lacks column"):
        scan_corpus("nemo", tmp_path / "b")


def test_turev(tmp_path, write_audio):
    build_turev(tmp_path, write_audio)
    utts = scan_corpus("turev", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "transcript", "language", "gender") == [
        ("angry", "Angry", "1157", "acik", "tr", None), ("calm", "Calm", "1234", "cay", "tr", None),
        ("sad", "Sad", "1234", "son_kez", "tr", None)]
    assert scan_corpus("turev", tmp_path / "Sound Source") == utts


def test_emodb(tmp_path, write_audio):
    build_emodb(tmp_path, write_audio)
    utts = scan_corpus("emodb", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "gender", "language") == [
        ("happy", "F", "03", "male", "de"), ("boredom", "L", "08", "female", "de"),
        ("angry", "W", "16", "female", "de")]
    assert scan_corpus("emodb", tmp_path / "wav") == utts


def test_emovo(tmp_path, write_audio):
    build_emovo(tmp_path, write_audio)
    utts = scan_corpus("emovo", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "gender", "language") == [
        ("disgust", "dis", "f1", "female", "it"), ("happy", "gio", "m2", "male", "it"),
        ("fear", "pau", "m2", "male", "it")]


def test_cremad(tmp_path, write_audio):
    build_cremad(tmp_path, write_audio)
    utts = scan_corpus("cremad", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "gender", "language") == [
        ("angry", "ANG", "1001", "male", "en"), ("happy", "HAP", "1002", "female", "en")]
    assert [u.transcript for u in utts] == ["Don't forget a jacket.", "It's eleven o'clock."]


def test_cremad_without_demographics(tmp_path, write_audio):
    build_cremad(tmp_path, write_audio, demographics=False)
    assert [u.gender for u in scan_corpus("cremad", tmp_path / "AudioWAV")] == [None, None]


def test_tess(tmp_path, write_audio):
    build_tess(tmp_path, write_audio)
    utts = scan_corpus("tess", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "transcript") == [
        ("surprise", "pleasant_surprise", "OAF", "Say the word chair."),
        ("angry", "angry", "OAF", "Say the word back."),
        ("neutral", "neutral", "YAF", "Say the word dog."),
        ("surprise", "ps", "YAF", "Say the word bath.")]
    assert {(u.gender, u.language) for u in utts} == {("female", "en")}


def test_tess_speaker_comes_from_the_folder(tmp_path, write_audio):
    write_audio(tmp_path / "OAF_neutral" / "OA_bite_neutral.wav")  # a real TESS file name
    assert rows(scan_corpus("tess", tmp_path), "speaker", "label") == [("OAF", "neutral")]


def test_koetts(tmp_path, write_audio):
    build_koetts(tmp_path, write_audio)
    utts = scan_corpus("koetts", tmp_path)
    assert names(utts) == ["ema00001.wav", "ema00150.flac", "nea00250.wav", "nea00400.wav"]
    assert rows(utts, "label", "speaker", "transcript") == [
        ("neutral", "ema", None), ("happy", "ema", "좋은 아침이에요."), ("sad", "nea", None),
        ("angry", "nea", None)]  # 002xx sad and 003xx angry, as the recordings are (the README swaps them)
    assert {u.language for u in utts} == {"ko"}


def test_emospeech(tmp_path, write_audio):
    build_emospeech(tmp_path, write_audio)
    utts = scan_corpus("emospeech", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "transcript") == [
        ("fear", "fearful", "d14a028c2a3a", "help"), ("angry", "angry", "0e17afa39fc0", "go"),
        ("calm", "calm", "0e17afa39fc0", "no")]


def test_baved(tmp_path, write_audio):
    build_baved(tmp_path, write_audio)
    utts = scan_corpus("baved", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "gender") == [
        ("neutral", "level1", "47", "male"), ("neutral", "level1", "56", "female")]
    levels = scan_corpus("baved", tmp_path, keep_levels=True)
    assert sorted(rows(levels, "native_label", "label")) == [
        ("level0", "sad"), ("level1", "neutral"), ("level1", "neutral"), ("level2", "angry")]
    arousal = scan_corpus(*parse_spec(f"baved-arousal:{tmp_path}"))  # every level; the high one a candidate set
    assert sorted(rows(arousal, "native_label", "label", "corpus")) == [
        ("level0", "sad", "baved"), ("level1", "neutral", "baved"), ("level1", "neutral", "baved"),
        ("level2", "happy|angry|fear|surprise", "baved")]
    with pytest.raises(ValueError, match="choose one"):
        scan_corpus("baved", tmp_path, keep_levels=True, arousal_sets=True)


def test_banglaser(tmp_path, write_audio):
    build_banglaser(tmp_path, write_audio)
    utts = scan_corpus("banglaser", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "language") == [
        ("disgust", "06", "35", "bn"), ("fear", "07", "35", "bn")]


def test_tess_odd_formats_load(tmp_path):
    """TESS holds AIFF files named .wav, float32 at 44.1 kHz and one file at 96 kHz."""
    import numpy as np
    import soundfile as sf

    from emovox.audio.load import load_audio

    tone = np.sin(2 * np.pi * 220 * np.arange(96000) / 96000).astype(np.float32) * 0.3
    sf.write(tmp_path / "OAF_aiff_angry.wav", tone[:44100], 44100, format="AIFF", subtype="PCM_16")
    sf.write(tmp_path / "OAF_float_angry.wav", tone[:44100], 44100, subtype="FLOAT")
    sf.write(tmp_path / "OAF_hires_angry.wav", tone, 96000, subtype="PCM_24")
    for name, seconds in [("aiff", 1.0), ("float", 1.0), ("hires", 1.0)]:
        signal = load_audio(tmp_path / f"OAF_{name}_angry.wav")
        assert signal.dtype == np.float32 and abs(len(signal) / 16000 - seconds) < 0.01, name
        assert 0.1 < np.abs(signal).max() <= 1.0


def test_savee_nested_and_flat(tmp_path, write_audio):
    build_savee(tmp_path / "nested", write_audio)
    utts = scan_corpus("savee", tmp_path / "nested")
    assert rows(utts, "label", "native_label", "speaker") == [
        ("angry", "a", "DC"), ("sad", "sa", "JE"), ("surprise", "su", "JK"), ("neutral", "n", "KL")]
    assert {(u.gender, u.language) for u in utts} == {("male", "en")}
    write_audio(tmp_path / "flat" / "DC_h05.wav")
    write_audio(tmp_path / "flat" / "JE_d02.flac")
    utts = scan_corpus("savee", tmp_path / "flat")
    assert rows(utts, "label", "speaker") == [("happy", "DC"), ("disgust", "JE")]


def test_urdu(tmp_path, write_audio):
    build_urdu(tmp_path, write_audio)
    utts = scan_corpus("urdu", tmp_path)
    assert rows(utts, "label", "native_label", "speaker", "gender", "language") == [
        ("angry", "Angry", "SM1", "male", "ur"), ("neutral", "Neutral", "SM27", "male", "ur"),
        ("sad", "Sad", "SF3", "female", "ur")]


def test_iemocap(tmp_path, write_audio):
    build_iemocap(tmp_path, write_audio)
    utts = scan_corpus("iemocap", tmp_path)
    assert names(utts) == ["Ses01F_impro01_F000.wav", "Ses01F_impro01_F001.wav",
                           "Ses02M_script01_1_F012.flac"]
    assert rows(utts, "label", "native_label", "speaker", "gender", "transcript") == [
        ("neutral", "neu", "Ses01F", "female", "Excuse me."),
        ("happy", "exc", "Ses01F", "female", None),
        ("sad", "sad", "Ses02F", "female", None)]
    assert {u.language for u in utts} == {"en"}


def test_folder(tmp_path, write_audio, caplog):
    build_folder(tmp_path / "mine", write_audio)
    with caplog.at_level(logging.WARNING):
        utts = scan_corpus("folder", tmp_path / "mine")
    assert "'docs'" in caplog.text and "'joy'" in caplog.text
    assert rows(utts, "label", "native_label", "speaker", "corpus") == [
        ("angry", "Angry", "spk2", "mine"), ("happy", "happy", "spk1", "mine")]
    utts = scan_corpus("folder", tmp_path / "mine", mapping={"Joy": "happy", "happy": None},
                       corpus="custom", language="en")
    assert rows(utts, "label", "native_label", "speaker", "corpus", "language") == [
        ("angry", "Angry", "spk2", "custom", "en"), ("happy", "joy", "spk3", "custom", "en")]


def test_csv(tmp_path, write_audio):
    a = write_audio(tmp_path / "audio" / "spk1_a.wav")
    b = write_audio(tmp_path / "elsewhere" / "b.FLAC")
    write_audio(tmp_path / "audio" / "c.wav")
    csv = tmp_path / "meta.csv"
    csv.write_text(
        "path,label,speaker,gender,language,transcript\n"
        "audio/spk1_a.wav,Happy,,Female,en,hello there\n"
        f"{b},joy,s9,,,\n"
        "audio/c.wav,frustrated,s1,,,\n", encoding="utf-8")
    utts = scan_corpus("csv", csv, mapping={"joy": "surprise", "frustrated": None})
    assert [u.path for u in utts] == [str(a), str(b)]
    assert rows(utts, "label", "native_label", "speaker", "gender", "language", "transcript",
                "corpus") == [
        ("happy", "Happy", "spk1", "female", "en", "hello there", "meta"),
        ("surprise", "joy", "s9", None, None, None, "meta")]


@pytest.mark.parametrize("body,match", [
    ("path,label\naudio/x.wav,happy\n", "audio file not found"),
    ("path,label\naudio/x.mp3,happy\n", "not a .wav or .flac"),
    ("path,label\naudio/x.wav,joy\n", "meta.csv:2: label 'joy'"),
    ("file,emotion\nx.wav,happy\n", "needs columns path,label"),
    ("path,label\n", "no labelled audio"),
])
def test_csv_errors(tmp_path, body, match):
    (tmp_path / "meta.csv").write_text(body)
    with pytest.raises(CorpusError, match=match):
        scan_corpus("csv", tmp_path / "meta.csv")


# --- errors, detection, specs ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_missing_root(tmp_path, name):
    with pytest.raises(CorpusError, match="not found"):
        scan_corpus(name, tmp_path / "absent")


@pytest.mark.parametrize("name", sorted(set(ADAPTERS) - {"nemo", "csv"}))
def test_empty_root(tmp_path, name):
    corpus = name.split("-")[0]  # baved-arousal reads BAVED
    with pytest.raises(CorpusError, match=f"{corpus}: no labelled audio found under"):
        scan_corpus(name, tmp_path)


def test_root_is_a_file(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(CorpusError, match="expected a folder"):
        scan_corpus("ravdess", tmp_path / "f.txt")


def test_unknown_adapter(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus 'timit'"):
        scan_corpus("timit", tmp_path)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_detect(tmp_path, write_audio, name):
    BUILDERS[name](tmp_path / name, write_audio)
    assert detect(tmp_path / name) == name
    assert parse_spec(str(tmp_path / name)) == (name, tmp_path / name)


def test_detect_other_cases(tmp_path, write_audio):
    assert detect(tmp_path) is None
    assert detect(tmp_path / "absent") is None
    (tmp_path / "m.csv").write_text("path,label\n")
    (tmp_path / "m.txt").write_text("")
    assert detect(tmp_path / "m.csv") == "csv" and detect(tmp_path / "m.txt") is None
    write_audio(tmp_path / "flat" / "KL_su01.wav")
    assert detect(tmp_path / "flat") == "savee"
    write_audio(tmp_path / "anon" / "Angry" / "x_1.wav")  # urdu-like folders, other file names
    assert detect(tmp_path / "anon") == "folder"
    build_ravdess(tmp_path / "wrapped" / "RAVDESS", write_audio)  # one wrapper folder, as in archives
    assert detect(tmp_path / "wrapped") == "ravdess"


def test_parse_spec(tmp_path):
    assert parse_spec("ravdess:/data/RAVDESS") == ("ravdess", Path("/data/RAVDESS"))
    assert parse_spec("CSV:rel/meta.csv") == ("csv", Path("rel/meta.csv"))
    assert parse_spec("folder:/a:b") == ("folder", Path("/a:b"))
    with pytest.raises(CorpusError, match="does not exist"):
        parse_spec(str(tmp_path / "absent"))
    with pytest.raises(CorpusError, match="no recognised corpus layout; name the corpus"):
        parse_spec(str(tmp_path))


def test_scans_are_deterministic_and_sorted(tmp_path, write_audio):
    build_savee(tmp_path, write_audio)
    utts = scan_corpus("savee", tmp_path)
    assert [u.path for u in utts] == sorted(u.path for u in utts)
    assert scan_corpus("savee", tmp_path) == utts


# --- the real development corpora -----------------------------------------------------------


@pytest.mark.corpora
def test_real_ravdess(corpora_root):
    utts = scan_corpus(*parse_spec(str(corpora_root / "ravdess")))
    s = summarize(utts)
    assert s["utterances"] == 1440 and len(s["speakers"]) == 24
    assert s["labels"] == {"neutral": 96, "calm": 192, "happy": 192, "sad": 192, "angry": 192,
                           "fear": 192, "disgust": 192, "surprise": 192}
    assert Counter(u.gender for u in utts) == {"male": 720, "female": 720}


@pytest.mark.corpora
def test_real_nemo(corpora_root):
    utts = scan_corpus(*parse_spec(str(corpora_root / "nemo")))
    s = summarize(utts)
    assert s["utterances"] == 2245 and len(s["speakers"]) == 9
    assert s["labels"] == {"neutral": 405, "happy": 375, "sad": 385, "angry": 375, "fear": 369,
                           "surprise": 336}
    assert all(u.transcript and u.speaker == u.speaker.strip() for u in utts)


@pytest.mark.corpora
def test_real_turev(corpora_root):
    utts = scan_corpus(*parse_spec(str(corpora_root / "turev")))
    s = summarize(utts)
    assert s["utterances"] == 1735 and len(s["speakers"]) == 6
    assert s["labels"] == {"calm": 408, "happy": 357, "sad": 483, "angry": 487}


# Sizes after each adapter's documented drops (emospeech: background/unknown keywords and None;
# baved: arousal levels 0 and 2).
EXTRA = {"tess": (2800, 2), "koetts": (300, 15), "emospeech": (5433, 106), "baved": (672, 33),
         "banglaser": (261, 15)}


@pytest.mark.corpora
@pytest.mark.parametrize("name", sorted(EXTRA))
def test_real_fetched_corpora(extra_corpora_root, name):
    if not (extra_corpora_root / name).is_dir():
        pytest.skip(f"{name} not fetched")
    found, root = parse_spec(str(extra_corpora_root / name))
    assert found == name
    s = summarize(scan_corpus(found, root))
    assert (s["utterances"], len(s["speakers"])) == EXTRA[name]
