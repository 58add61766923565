{
  "linux/amd64" = {
    imageName = "{{HOST}}/test/app";
    imageDigest = "sha256:ba785aa5cbe3b2fcf427e1cf55db9d06c804ca5ce766dccc3003aa8fb200e82d";
    hash = "sha256-pRzMYK+4lyNDxmGnuENxYiaaDbo0RvJE6aduz52zIRA=";
    finalImageName = "test/app";
    finalImageTag = "multi";
  };
  "linux/arm64/v8" = {
    imageName = "{{HOST}}/test/app";
    imageDigest = "sha256:37b87a9af9583052b10d20d6400fc1772672b84f1a7fbb77a13fda4e3d591b20";
    hash = "sha256-uVP9wcUdMqCpbDsU3FFTd4jWcT4EhdOtsAuPFeeDKl0=";
    finalImageName = "test/app";
    finalImageTag = "multi";
  };
}
