"""The crowd on the site: the Gallery shows FER+ faces with their ten votes beside the model's probabilities,
lists the faces where people split and those where the model and the crowd disagree; Explore shows what ten
people said of a Gallery face; the Models page shows a model judged by the crowd."""
import csv
import html
import json
import re
import shutil

import cv2
import numpy as np
import pytest

from conftest import open_page

# FER+'s columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF.
VOTES = [
    [9, 1, 0, 0, 0, 0, 0, 0, 0, 0],   # neutral, nearly everyone
    [4, 0, 0, 3, 3, 0, 0, 0, 0, 0],   # people split: neutral 4 of 10
    [0, 0, 0, 0, 0, 0, 0, 0, 8, 2],   # unknown: not in the Gallery
    [2, 3, 0, 0, 0, 0, 0, 5, 0, 0],   # contempt 5 of 10: split too (half, not more)
    [0, 10, 0, 0, 0, 0, 0, 0, 0, 0],  # happiness, everyone
]


@pytest.fixture(scope="module")
def voted_faces(tmp_path_factory, astronaut_bgr, astronaut_face_box):
    """A FERPlus test folder of five faces (the astronaut's, shifted and lit differently) with their votes and
    FER2013's own labels."""
    folder = tmp_path_factory.mktemp("ferplus") / "FER2013Valid"
    folder.mkdir()
    x, y, w, h = astronaut_face_box
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    with open(folder / "label.csv", "w", newline="") as labels, open(folder / "fer2013_label.csv", "w",
                                                                       newline="") as fer2013:
        for i, counts in enumerate(VOTES):
            name = f"fer{28638 + i:07d}.png"
            face = cv2.resize(gray[y + 2 * i:y + h + 2 * i, x:x + w], (48, 48))
            cv2.imwrite(str(folder / name), np.clip(face.astype(int) + 12 * i, 0, 255).astype(np.uint8))
            csv.writer(labels).writerow([name, "(0, 0, 48, 48)", *counts])
            csv.writer(fer2013).writerow([name, ["sad", "angry", "fear", "disgust", "happy"][i]])
    return folder


@pytest.fixture(scope="module")
def app_config(voted_faces):
    return {"GALLERY_DIR": str(voted_faces)}


def test_a_gallery_face_shows_what_ten_people_said_beside_the_model(client):
    page = client.get("/gallery?i=1").get_data(as_text=True)
    assert 'Most people said: <strong id="true-label">neutral</strong>' in page
    crowd = page[page.index('id="crowd-bars"'):]
    assert "what 10 people said: they split" in crowd
    assert re.findall(r'<span class="name">(\w[\w ]*)</span>.*?<span class="value">(\d+)</span>', crowd, re.S)[:3] == [
        ("neutral", "4"), ("sad", "3"), ("angry", "3")]            # most votes first; ties in FER+'s order
    assert "FER2013's one label: <strong>angry</strong>" in crowd
    model = page[page.index('id="model-bars"'):page.index('id="crowd-bars"')]
    assert len(re.findall(r'class="bar( top)?"', model)) == 7          # the fixture model's seven classes


def test_faces_most_people_called_unknown_are_left_out_and_the_rest_keep_their_files(client):
    assert "face 1 of 4" in client.get("/gallery").get_data(as_text=True)
    said = client.get("/gallery/votes/2").get_json()                 # the fourth file: the unknown one is out
    assert said["label"] == "contempt" and said["votes"] == {"contempt": 5, "happy": 3, "neutral": 2}
    assert said["shares"] == {"contempt": 0.5, "happy": 0.3, "neutral": 0.2} and said["fer2013"] == "disgust"
    picture = cv2.imdecode(np.frombuffer(client.get("/gallery/image/2").data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert picture.shape == (48, 48)


def test_the_split_list_holds_the_faces_where_no_class_got_more_than_half_most_split_first(client):
    page = client.get("/gallery?show=split").get_data(as_text=True)
    listed = re.findall(r'href="/gallery\?i=(\d+)"', page[page.index('id="listed-faces"'):])
    assert listed == ["1", "2"]                                      # 4 of 10, then 5 of 10
    assert "On 2 of the 4 faces" in page


def test_a_gallery_face_is_read_whole_as_the_data_set_cut_it(client, app):
    """The page's label is the model's answer on the 48x48 face itself, not on a face searched for inside it."""
    from utils.media.decode import read_image
    from web.registry import registry
    with app.app_context():
        predictor = registry().get(None).predictor
        for index in range(4):
            item = app.extensions["gallery"].item(index)
            probabilities = predictor.probabilities(predictor.preprocess(read_image(item.path))[None])[0]
            page = client.get(f"/gallery?i={index}").get_data(as_text=True)
            assert f'id="predicted-label">{predictor.classes[probabilities.argmax()]}<' in page


def test_the_api_reads_a_picture_whole_when_asked(client, astronaut_bgr):
    """detail=whole: no search, one face, the whole picture (a photo with a face in it still reads whole)."""
    photo = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
    searched = client.post("/api/predict", data=photo, content_type="image/jpeg").get_json()["faces"]
    whole = client.post("/api/predict?detail=whole", data=photo, content_type="image/jpeg").get_json()["faces"]
    assert not searched[0]["whole_image"] and searched[0]["box"] != [0, 0, 512, 512]
    assert len(whole) == 1 and whole[0]["whole_image"] and whole[0]["box"] == [0, 0, 512, 512]


def test_the_disagreement_list_is_every_face_whose_gallery_page_shows_another_label(client):
    wrong = set()
    for index in range(4):
        page = client.get(f"/gallery?i={index}").get_data(as_text=True)
        true = re.search(r'id="true-label">(\w+)<', page).group(1)
        predicted = re.search(r'id="predicted-label">(\w+)<', page).group(1)
        if true != predicted:
            wrong.add(str(index))
    page = client.get("/gallery?show=disagree").get_data(as_text=True)
    assert set(re.findall(r'href="/gallery\?i=(\d+)"', page[page.index('id="listed-faces"'):])) == wrong
    assert f"On {len(wrong)} of the 4 faces" in page


def test_a_wrong_list_is_a_400_page(client):
    response = client.get("/gallery?show=everything")
    assert response.status_code == 400
    assert "'show' must be one of split, disagree" in html.unescape(response.get_data(as_text=True))


def test_faces_with_one_label_each_cannot_be_listed_by_votes(make_app, tmp_path):
    folder = tmp_path / "test" / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "PublicTest_1.png"), np.full((48, 48), 128, np.uint8))
    client = make_app(GALLERY_DIR=str(tmp_path / "test"), WARM_UP=False).test_client()
    response = client.get("/gallery?show=split")
    assert response.status_code == 400 and "make data FERPLUS=" in response.get_data(as_text=True)
    assert "Most people said" not in client.get("/gallery").get_data(as_text=True)
    assert client.get("/gallery/votes/0").get_json() == {"label": "happy", "votes": None, "fer2013": None,
                                                        "shares": None}


def test_the_models_page_shows_a_model_judged_by_the_crowd(make_app, model_path, tmp_path):
    for suffix in (".h5", ".json"):
        shutil.copy(model_path.replace(".h5", suffix), tmp_path / f"judged{suffix}")
    card = json.load(open(tmp_path / "judged.json"))
    card["labels"] = {"source": "votes", "scheme": "distribution", "votes_per_face": 10, "pixels": "raw"}
    card["crowd"] = {"data": "dataset/ferplus", "faces": 3555, "majority_accuracy": 0.8412,
                     "crowd_choice_probability": 0.7105, "vote_cross_entropy": 0.5523, "vote_ece": 0.0312,
                     "per_class": {"happy": 0.93, "contempt": 0.2}, "fer2013_agreement": 0.6269,
                     "fer2013_accuracy": 0.5803, "fer2013_faces": 3511}
    json.dump(card, open(tmp_path / "judged.json", "w"))
    page = make_app(DEFAULT_MODEL=str(tmp_path / "judged.h5")).test_client().get("/models").get_data(as_text=True)
    assert "the votes of 10 people a face, learnt as their distribution (raw pixels)" in page
    assert "says what most people said on 84.1% of 3,555 faces (dataset/ferplus)" in page
    assert "the crowd&#39;s choice on 62.7% of 3,511 faces; the model says it on 58.0%" in page
    crowd = page[page.index("says what most people said, per emotion"):]
    assert re.findall(r'<span class="name">(\w+)</span>.*?<span class="value">(\d+)%</span>', crowd, re.S)[:2] == [
        ("happy", "93"), ("contempt", "20")]


def test_explore_shows_what_ten_people_said_of_a_gallery_face(site, playwright):
    browser, page = open_page(playwright)
    try:
        page.goto(f"{site}/explore?gallery=1")
        page.wait_for_selector("#crowd:not([hidden])")
        page.wait_for_selector("#explorer:not([hidden])")
        assert page.locator("#crowd-count").inner_text() == "10"
        names = page.locator("#crowd-bars .bar .name").all_inner_texts()
        assert names == ["neutral", "sad", "angry"]
        assert page.locator("#crowd-bars .bar.top .name").inner_text() == "neutral"
        # the votes come most first, so a bar's place is no class index: no class colour (angry's, the first)
        fills = page.locator("#crowd-bars .bar .fill").evaluate_all(
            "fills => fills.map((fill) => getComputedStyle(fill).backgroundColor)")
        assert fills[0] == fills[1] == fills[2]
        assert page.locator("#crowd-bars .bar .value").all_inner_texts() == ["40%", "30%", "30%"]
        assert page.locator("#crowd-fer2013").inner_text() == "FER2013's one label: angry"
    finally:
        browser.close()


def test_a_ferplus_folder_with_a_missing_or_damaged_face_or_a_bad_row_is_a_page_that_says_so(make_app, tmp_path):
    """The user's own copy of FER+ (the FERPlus repository's label.csv without its images, say) is never a 500."""
    folder = tmp_path / "FER2013Valid"
    folder.mkdir()
    cv2.imwrite(str(folder / "fer0000001.png"), np.full((48, 48), 128, np.uint8))
    (folder / "fer0000002.png").write_bytes(b"not a png")
    rows = [["fer0000000.png", "(0, 0, 48, 48)", *VOTES[0]],        # its file is not there
            ["fer0000001.png", "(0, 0, 48, 48)", *VOTES[4]],
            ["fer0000002.png", "(0, 0, 48, 48)", *VOTES[1]]]        # its file is no picture
    with open(folder / "label.csv", "w", newline="") as labels:
        csv.writer(labels).writerows(rows)
    client = make_app(GALLERY_DIR=str(folder), WARM_UP=False).test_client()
    first = client.get("/gallery").get_data(as_text=True)
    assert "face 1 of 2" in first and 'id="true-label">happy<' in first
    damaged = client.get("/gallery?i=1")
    assert damaged.status_code == 200 and 'id="true-label"' not in damaged.get_data(as_text=True)
    disagree = client.get("/gallery?show=disagree")
    assert disagree.status_code == 200
    listed = re.findall(r'href="/gallery\?i=(\d+)"', disagree.get_data(as_text=True))
    said = re.search(r'id="predicted-label">(\w+)<', first).group(1)
    assert listed == ([] if said == "happy" else ["0"])            # the damaged face, not read, is not listed

    with open(folder / "label.csv", "a", newline="") as labels:
        csv.writer(labels).writerow(["fer0000003.png", "(0, 0, 48, 48)", 4, 0, 0])
    client = make_app(GALLERY_DIR=str(folder), WARM_UP=False).test_client()
    page = client.get("/gallery")
    assert page.status_code == 200
    said = html.unescape(re.search(r'id="gallery-problem">([^<]*)<', page.get_data(as_text=True)).group(1))
    assert said == f"{folder} row 4: 3 vote counts, expected 10 (neutral, happiness, surprise, sadness, anger, disgust, " \
                   "fear, contempt, unknown, NF)"
    assert client.get("/gallery/image/0").status_code == 404 and client.get("/gallery/votes/0").status_code == 404


def test_the_gallerys_labels_are_read_again_when_the_model_is_loaded_again(voted_faces, monkeypatch):
    """A retrained or recalibrated model keeps its name but is a new LoadedModel: the disagreement list
    must read the faces with it, not keep the old model's labels."""
    import web.gallery
    monkeypatch.setattr(web.gallery, "_read_face", lambda predictor, path: np.zeros((48, 48, 1), np.float32))

    class Answering:   # a predictor that says one class of every face
        classes = ("happy", "neutral")

        def __init__(self, answer):
            self.answer = answer

        def probabilities(self, faces):
            out = np.zeros((len(faces), 2))
            out[:, self.classes.index(self.answer)] = 1
            return out

    class Loaded:
        def __init__(self, answer):
            self.name, self.predictor = "emotion_model", Answering(answer)

    gallery = web.gallery.Gallery(str(voted_faces))
    first, again = Loaded("happy"), Loaded("neutral")
    assert gallery.predicted(first) == ["happy"] * 4
    assert gallery.predicted(first) is gallery.predicted(first)        # kept while the model is the same
    assert gallery.predicted(again) == ["neutral"] * 4


def test_a_bad_row_of_fer2013s_labels_is_the_gallerys_one_line_as_for_training(make_app, voted_faces, tmp_path):
    folder = tmp_path / "FER2013Valid"
    shutil.copytree(voted_faces, folder)
    with open(folder / "fer2013_label.csv", "a", newline="") as labels:
        csv.writer(labels).writerow(["fer0028700.png", "grumpy"])
    page = make_app(GALLERY_DIR=str(folder), WARM_UP=False).test_client().get("/gallery")
    assert page.status_code == 200
    said = html.unescape(re.search(r'id="gallery-problem">([^<]*)<', page.get_data(as_text=True)).group(1))
    assert said.startswith(f"{folder / 'fer2013_label.csv'} row 6: expected an image name and one of angry")
