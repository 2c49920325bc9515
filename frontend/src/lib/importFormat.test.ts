import { describe, expect, it } from "vitest";
import { detectFormat, suggestion } from "./importFormat";

describe("detectFormat", () => {
  it("reads the layout from the file names", () => {
    expect(detectFormat([{ name: "a.png" }, { name: "b.JPG" }])).toBe("images");
    expect(detectFormat([{ name: "lighthouse/0_info.json" }, { name: "lighthouse/0_00_im.jpg" }])).toBe("supertuxkart");
    expect(detectFormat([{ name: "Annotations/a.xml" }, { name: "JPEGImages/a.jpg" }])).toBe("voc");
    expect(detectFormat([{ name: "labels/train/a.txt" }, { name: "images/train/a.jpg" }])).toBe("yolo");
    expect(detectFormat([{ name: "data.yaml" }])).toBe("yolo");
    expect(detectFormat([{ name: "all.zip" }])).toBeNull();
    expect(detectFormat([])).toBeNull();
  });
  it("tells COCO from plain detection JSON by the first bytes", () => {
    expect(detectFormat([{ name: "ann.json", head: '{"images": [], "annotations": []' }, { name: "a.png" }])).toBe("coco");
    expect(detectFormat([{ name: "det.json", head: '[{"file_name": "a.png", "boxes": []}]' }])).toBe("detjson");
  });
  it("suggests another format only when it differs", () => {
    expect(suggestion("coco", [{ name: "Annotations/a.xml" }])).toBe("voc");
    expect(suggestion("voc", [{ name: "Annotations/a.xml" }])).toBeNull();
  });
});
