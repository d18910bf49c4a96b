#!/usr/bin/env python3
"""gen_api_cases.py: writes tests/api/cases/<Operation>/<name>.{req,resp,setup}.json.

The expected answers are written by hand here from REKOGNITION.md (response
members, exception names) and from the geometry of the seeded embeddings
(F1=[1], F2=[1,0.3], F3=[1,0,0.5], F4=[0,1]: Euclidean 0.3, 0.5 and 1.41
from F1; F3 is 0.583 from F2), never from the output of the code. Under the
calibrated dlib map (README "Accuracy": 0.4213 -> 99, 0.4717 -> 90,
0.5424 -> 80, linear between) these are Similarity ~99.7 (0.3), ~86 (0.5),
~77 (0.583) and ~0 (1.41). Rerun after editing:
    python3 tools/gen_api_cases.py
"""
import json, os
root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "api", "cases")
F = lambda n: "00000000-0000-4000-8000-%012d" % n
ACC = "123456789012"
ARN = lambda c: "arn:aws:rekognition:us-east-1:%s:collection/%s" % (ACC, c)
IMG = "iVBORw0KGgo="  # 8 bytes, the PNG signature
def cc(c="c", **kw):
    b = {"CollectionId": c}; b.update(kw); return {"call": "CreateCollection", "body": b}
def call(op, **b): return {"call": op, "body": b}
# faces: F1=[1], F2=[1,0.3] (euclid 0.3 from F1), F3=[1,0,0.5] (0.5), F4=[0,1] (1.41)
EMB = {1: [1], 2: [1, 0.3], 3: [1, 0, 0.5], 4: [0, 1]}
def seed(coll="c", faces=(1, 2, 3, 4), users=None, ext=None):
    users = users or {}; ext = ext or {}
    out = []
    for n in faces:
        f = {"FaceId": F(n), "Embedding": EMB[n]}
        if n in users: f["UserId"] = users[n]
        if n in ext: f["ExternalImageId"] = ext[n]
        out.append(f)
    return {"seed": coll, "faces": out}
def face(n, user=None, ext=None):
    f = {"FaceId": F(n), "BoundingBox": {"Width": 0.5, "Height": 0.5, "Left": 0.25, "Top": 0.125},
         "ImageId": "11111111-2222-5333-8444-555555555555", "Confidence": 99.5,
         "IndexFacesModelVersion": "101.0"}
    if ext: f["ExternalImageId"] = ext
    if user: f["UserId"] = user
    return f
def err(t, m=None):
    e = {"__type": t}
    if m: e["message"] = m
    return e
IPE = "InvalidParameterException"; RNF = "ResourceNotFoundException"
cases = {}
def case(op, name, req, resp, setup=None):
    cases[(op, name)] = (req, resp, setup)

# ---- CreateCollection
case("CreateCollection", "ok", {"CollectionId": "my-coll.1_x"},
     {"StatusCode": 200, "CollectionArn": "aws:rekognition:us-east-1:%s:collection/my-coll.1_x" % ACC,
      "FaceModelVersion": "101.0"})
case("CreateCollection", "ok_with_tags", {"CollectionId": "c", "Tags": {"team": "a", "cost:center": "42"}},
     {"StatusCode": 200, "CollectionArn": "aws:rekognition:us-east-1:%s:collection/c" % ACC, "FaceModelVersion": "101.0"})
case("CreateCollection", "exists", {"CollectionId": "c"}, err("ResourceAlreadyExistsException", "The collection id: c already exists"), [cc()])
case("CreateCollection", "case_sensitive", {"CollectionId": "C"},
     {"StatusCode": 200, "CollectionArn": "aws:rekognition:us-east-1:%s:collection/C" % ACC, "FaceModelVersion": "101.0"}, [cc()])
case("CreateCollection", "bad_pattern", {"CollectionId": "a b"}, err(IPE, "'CollectionId' failed to satisfy constraint: Member must satisfy regular expression pattern"))
case("CreateCollection", "missing_id", {}, err(IPE, "missing required member 'CollectionId'"))
case("CreateCollection", "too_long", {"CollectionId": "x" * 256}, err(IPE, "length less than or equal to 255"))
case("CreateCollection", "max_length", {"CollectionId": "x" * 255},
     {"StatusCode": 200, "CollectionArn": "aws:rekognition:us-east-1:%s:collection/%s" % (ACC, "x" * 255), "FaceModelVersion": "101.0"})
case("CreateCollection", "wrong_type", {"CollectionId": 5}, err("SerializationException", "CollectionId"))
case("CreateCollection", "unknown_member", {"CollectionId": "c", "Colour": "red"}, err(IPE, "unknown member 'Colour'"))
case("CreateCollection", "tag_aws_prefix", {"CollectionId": "c", "Tags": {"aws:x": "1"}}, err(IPE, "Tags"))
case("CreateCollection", "too_many_tags", {"CollectionId": "c", "Tags": {"k%d" % i: "v" for i in range(201)}}, err(IPE, "length less than or equal to 200"))
# ---- DescribeCollection
case("DescribeCollection", "ok", {"CollectionId": "c"},
     {"FaceCount": 4, "FaceModelVersion": "101.0", "CollectionARN": ARN("c"), "CreationTimestamp": "<number>", "UserCount": 1},
     [cc(), call("CreateUser", CollectionId="c", UserId="u1"), seed(users={2: "u1"})])
case("DescribeCollection", "empty", {"CollectionId": "c"},
     {"FaceCount": 0, "FaceModelVersion": "101.0", "CollectionARN": ARN("c"), "CreationTimestamp": "<number>", "UserCount": 0}, [cc()])
case("DescribeCollection", "not_found", {"CollectionId": "nope"}, err(RNF, "The collection id: nope does not exist"), [cc()])
case("DescribeCollection", "empty_id", {"CollectionId": ""}, err(IPE, "length greater than or equal to 1"))
# ---- ListCollections
case("ListCollections", "empty", {}, {"CollectionIds": [], "FaceModelVersions": []})
case("ListCollections", "sorted", {}, {"CollectionIds": ["a", "b", "c"], "FaceModelVersions": ["101.0"] * 3}, [cc("c"), cc("a"), cc("b")])
case("ListCollections", "first_page", {"MaxResults": 2}, {"CollectionIds": ["a", "b"], "NextToken": "<string>", "FaceModelVersions": ["101.0"] * 2}, [cc("c"), cc("a"), cc("b")])
case("ListCollections", "bad_token", {"NextToken": "not a token!"}, err("InvalidPaginationTokenException", "Invalid Token"), [cc()])
case("ListCollections", "token_too_long", {"NextToken": "x" * 256}, err(IPE, "NextToken"))
case("ListCollections", "max_too_big", {"MaxResults": 4097}, err(IPE, "less than or equal to 4096"))
case("ListCollections", "max_not_int", {"MaxResults": "10"}, err("SerializationException", "MaxResults"))
# ---- DeleteCollection
case("DeleteCollection", "ok", {"CollectionId": "c"}, {"StatusCode": 200}, [cc(), seed()])
case("DeleteCollection", "not_found", {"CollectionId": "c"}, err(RNF, "does not exist"))
# ---- ListFaces
U = [cc(), call("CreateUser", CollectionId="c", UserId="u1"), seed(users={2: "u1"}, ext={1: "img:1"})]
case("ListFaces", "ok", {"CollectionId": "c"},
     {"Faces": [face(1, ext="img:1"), face(2, user="u1"), face(3), face(4)], "FaceModelVersion": "101.0"}, U)
case("ListFaces", "by_user", {"CollectionId": "c", "UserId": "u1"}, {"Faces": [face(2, user="u1")], "FaceModelVersion": "101.0"}, U)
case("ListFaces", "by_face_ids", {"CollectionId": "c", "FaceIds": [F(4), F(9), F(1)]},
     {"Faces": [face(1, ext="img:1"), face(4)], "FaceModelVersion": "101.0"}, U)
case("ListFaces", "page", {"CollectionId": "c", "MaxResults": 2},
     {"Faces": [face(1, ext="img:1"), face(2, user="u1")], "NextToken": "<string>", "FaceModelVersion": "101.0"}, U)
case("ListFaces", "empty", {"CollectionId": "c"}, {"Faces": [], "FaceModelVersion": "101.0"}, [cc()])
case("ListFaces", "not_found", {"CollectionId": "c"}, err(RNF, "does not exist"))
case("ListFaces", "bad_token", {"CollectionId": "c", "NextToken": "zzz"}, err("InvalidPaginationTokenException"), [cc()])
case("ListFaces", "bad_face_id", {"CollectionId": "c", "FaceIds": ["0000"]}, err(IPE, "FaceIds[0]"), [cc()])
# ---- DeleteFaces
case("DeleteFaces", "ok", {"CollectionId": "c", "FaceIds": [F(1), F(9), F(2), F(1)]},
     {"DeletedFaces": [F(1)], "UnsuccessfulFaceDeletions": [
         {"FaceId": F(9), "Reasons": ["FACE_NOT_FOUND"]},
         {"FaceId": F(2), "UserId": "u1", "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]},
         {"FaceId": F(1), "Reasons": ["FACE_NOT_FOUND"]}]}, U)
case("DeleteFaces", "not_found", {"CollectionId": "c", "FaceIds": [F(1)]}, err(RNF, "does not exist"))
case("DeleteFaces", "empty_list", {"CollectionId": "c", "FaceIds": []}, err(IPE, "FaceIds"), [cc()])
case("DeleteFaces", "missing_ids", {"CollectionId": "c"}, err(IPE, "FaceIds"), [cc()])
case("DeleteFaces", "uppercase_id", {"CollectionId": "c", "FaceIds": ["ABCDEF00-0000-4000-8000-000000000001"]}, err(IPE, "FaceIds[0]"), [cc()])
# ---- SearchFaces
S = [cc(), seed()]
m = lambda n, **kw: {"Similarity": "<number>", "Face": face(n, **kw)}
case("SearchFaces", "ok", {"CollectionId": "c", "FaceId": F(1)},
     {"SearchedFaceId": F(1), "FaceMatches": [m(2), m(3)], "FaceModelVersion": "101.0"}, S)
case("SearchFaces", "threshold", {"CollectionId": "c", "FaceId": F(1), "FaceMatchThreshold": 90},
     {"SearchedFaceId": F(1), "FaceMatches": [m(2)], "FaceModelVersion": "101.0"}, S)
case("SearchFaces", "threshold_zero", {"CollectionId": "c", "FaceId": F(1), "FaceMatchThreshold": 0},
     {"SearchedFaceId": F(1), "FaceMatches": [m(2), m(3), m(4)], "FaceModelVersion": "101.0"}, S)
case("SearchFaces", "max_faces", {"CollectionId": "c", "FaceId": F(1), "MaxFaces": 1},
     {"SearchedFaceId": F(1), "FaceMatches": [m(2)], "FaceModelVersion": "101.0"}, S)
case("SearchFaces", "face_not_found", {"CollectionId": "c", "FaceId": F(9)}, err(RNF, F(9)), S)
case("SearchFaces", "collection_not_found", {"CollectionId": "x", "FaceId": F(1)}, err(RNF, "The collection id: x does not exist"), S)
case("SearchFaces", "threshold_range", {"CollectionId": "c", "FaceId": F(1), "FaceMatchThreshold": 101}, err(IPE, "FaceMatchThreshold"), S)
case("SearchFaces", "max_faces_range", {"CollectionId": "c", "FaceId": F(1), "MaxFaces": 4097}, err(IPE, "MaxFaces"), S)
case("SearchFaces", "missing_face_id", {"CollectionId": "c"}, err(IPE, "FaceId"), S)
# ---- image operations: IMG is a PNG signature and nothing else, so a valid
# request carrying it is a broken image (the working image paths are tested on
# real photos in test_api_image.c)
IIF = "InvalidImageFormatException"
for op, extra in [("SearchFacesByImage", {"CollectionId": "c"}), ("SearchUsersByImage", {"CollectionId": "c"}),
                  ("IndexFaces", {"CollectionId": "c"}), ("DetectFaces", {})]:
    b = dict(extra); b["Image"] = {"Bytes": IMG}
    case(op, "truncated_png", b, err(IIF, "invalid image format"), [cc()])
    b = dict(extra); b["Image"] = {"S3Object": {"Bucket": "my-bucket", "Name": "a.jpg"}}
    case(op, "s3_object", b, err("InvalidS3ObjectException", "Image.Bytes"), [cc()])
    b = dict(extra); b["Image"] = {"Bytes": "%%%%"}
    case(op, "bad_base64", b, err("InvalidImageFormatException", "Image.Bytes"), [cc()])
    b = dict(extra); b["Image"] = {}
    case(op, "empty_image", b, err(IPE, "Image"), [cc()])
    if extra:
        b = dict(extra); b["Image"] = {"Bytes": IMG}; b["CollectionId"] = "nope"
        case(op, "collection_not_found", b, err(RNF, "does not exist"), [cc()])
case("IndexFaces", "bad_external_id", {"CollectionId": "c", "Image": {"Bytes": IMG}, "ExternalImageId": "a/b"}, err(IPE, "ExternalImageId"), [cc()])
case("IndexFaces", "bad_quality_filter", {"CollectionId": "c", "Image": {"Bytes": IMG}, "QualityFilter": "BEST"}, err(IPE, "QualityFilter"), [cc()])
case("IndexFaces", "bad_attribute", {"CollectionId": "c", "Image": {"Bytes": IMG}, "DetectionAttributes": ["HAIR"]}, err(IPE, "DetectionAttributes[0]"), [cc()])
case("DetectFaces", "attributes_not_list", {"Image": {"Bytes": IMG}, "Attributes": "ALL"}, err("SerializationException", "Attributes"))
case("CompareFaces", "truncated_png", {"SourceImage": {"Bytes": IMG}, "TargetImage": {"Bytes": IMG}, "SimilarityThreshold": 90}, err(IIF, "invalid image format"))
case("CompareFaces", "missing_target", {"SourceImage": {"Bytes": IMG}}, err(IPE, "TargetImage"))
case("CompareFaces", "threshold_range", {"SourceImage": {"Bytes": IMG}, "TargetImage": {"Bytes": IMG}, "SimilarityThreshold": -1}, err(IPE, "SimilarityThreshold"))
case("CompareFaces", "s3_target", {"SourceImage": {"Bytes": IMG}, "TargetImage": {"S3Object": {"Bucket": "bkt", "Name": "x"}}}, err("InvalidS3ObjectException", "TargetImage"))
case("SearchUsersByImage", "max_users_range", {"CollectionId": "c", "Image": {"Bytes": IMG}, "MaxUsers": 501}, err(IPE, "MaxUsers"), [cc()])
# ---- users
CU = lambda u, **kw: call("CreateUser", CollectionId="c", UserId=u, **kw)
case("CreateUser", "ok", {"CollectionId": "c", "UserId": "user:1"}, {}, [cc()])
case("CreateUser", "duplicate", {"CollectionId": "c", "UserId": "u1"}, err("ConflictException", "u1"), [cc(), CU("u1")])
case("CreateUser", "no_collection", {"CollectionId": "c", "UserId": "u1"}, err(RNF, "does not exist"))
case("CreateUser", "token_replay", {"CollectionId": "c", "UserId": "u1", "ClientRequestToken": "tok-1"}, {}, [cc(), CU("u1", ClientRequestToken="tok-1")])
case("CreateUser", "token_mismatch", {"CollectionId": "c", "UserId": "u2", "ClientRequestToken": "tok-1"},
     err("IdempotentParameterMismatchException", "tok-1"), [cc(), CU("u1", ClientRequestToken="tok-1")])
case("CreateUser", "bad_user_id", {"CollectionId": "c", "UserId": "u 1"}, err(IPE, "UserId"), [cc()])
case("CreateUser", "user_id_too_long", {"CollectionId": "c", "UserId": "u" * 129}, err(IPE, "length less than or equal to 128"), [cc()])
case("CreateUser", "bad_token", {"CollectionId": "c", "UserId": "u", "ClientRequestToken": "a.b"}, err(IPE, "ClientRequestToken"), [cc()])
case("DeleteUser", "ok", {"CollectionId": "c", "UserId": "u1"}, {}, [cc(), CU("u1"), seed(users={2: "u1"})])
case("DeleteUser", "not_found", {"CollectionId": "c", "UserId": "u1"}, err(RNF, "u1"), [cc()])
case("DeleteUser", "no_collection", {"CollectionId": "c", "UserId": "u1"}, err(RNF, "The collection id: c does not exist"))
case("ListUsers", "ok", {"CollectionId": "c"},
     {"Users": [{"UserId": "u1", "UserStatus": "ACTIVE"}, {"UserId": "u2", "UserStatus": "CREATED"}]},
     [cc(), CU("u2"), CU("u1"), seed(users={2: "u1"})])
case("ListUsers", "page", {"CollectionId": "c", "MaxResults": 1},
     {"Users": [{"UserId": "u1", "UserStatus": "CREATED"}], "NextToken": "<string>"}, [cc(), CU("u2"), CU("u1")])
case("ListUsers", "empty", {"CollectionId": "c"}, {"Users": []}, [cc()])
case("ListUsers", "max_zero", {"CollectionId": "c", "MaxResults": 0}, err(IPE, "MaxResults"), [cc()])
case("ListUsers", "no_collection", {"CollectionId": "c"}, err(RNF))
A = [cc(), CU("u"), CU("u1"), seed(users={2: "u1"})]
case("AssociateFaces", "ok", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(1), F(9)]},
     {"AssociatedFaces": [{"FaceId": F(1)}], "UnsuccessfulFaceAssociations": [{"FaceId": F(9), "Reasons": ["FACE_NOT_FOUND"]}], "UserStatus": "ACTIVE"}, A)
case("AssociateFaces", "other_user", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(2)]},
     {"AssociatedFaces": [], "UnsuccessfulFaceAssociations": [{"FaceId": F(2), "UserId": "u1", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}], "UserStatus": "CREATED"}, A)
case("AssociateFaces", "low_confidence", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(4), F(3)]},
     {"AssociatedFaces": [{"FaceId": F(3)}], "UnsuccessfulFaceAssociations": [{"FaceId": F(4), "Confidence": "<number>", "Reasons": ["LOW_MATCH_CONFIDENCE"]}], "UserStatus": "ACTIVE"},
     A + [call("AssociateFaces", CollectionId="c", UserId="u", FaceIds=[F(1)])])
case("AssociateFaces", "low_threshold_accepts", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(4)], "UserMatchThreshold": 0},
     {"AssociatedFaces": [{"FaceId": F(4)}], "UnsuccessfulFaceAssociations": [], "UserStatus": "ACTIVE"},
     A + [call("AssociateFaces", CollectionId="c", UserId="u", FaceIds=[F(1)])])
case("AssociateFaces", "already_associated", {"CollectionId": "c", "UserId": "u1", "FaceIds": [F(2)]},
     {"AssociatedFaces": [], "UnsuccessfulFaceAssociations": [], "UserStatus": "ACTIVE"}, A)
case("AssociateFaces", "no_user", {"CollectionId": "c", "UserId": "nobody", "FaceIds": [F(1)]}, err(RNF, "nobody"), A)
case("AssociateFaces", "too_many_ids", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(i) for i in range(101)]}, err(IPE, "length less than or equal to 100"), A)
case("AssociateFaces", "threshold_range", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(1)], "UserMatchThreshold": 100.5}, err(IPE, "UserMatchThreshold"), A)
case("DisassociateFaces", "ok", {"CollectionId": "c", "UserId": "u1", "FaceIds": [F(2), F(9), F(1)]},
     {"DisassociatedFaces": [{"FaceId": F(2)}], "UnsuccessfulFaceDisassociations": [
         {"FaceId": F(9), "Reasons": ["FACE_NOT_FOUND"]},
         {"FaceId": F(1), "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}], "UserStatus": "CREATED"}, A)
case("DisassociateFaces", "other_user", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(2)]},
     {"DisassociatedFaces": [], "UnsuccessfulFaceDisassociations": [{"FaceId": F(2), "UserId": "u1", "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}], "UserStatus": "CREATED"}, A)
case("DisassociateFaces", "no_user", {"CollectionId": "c", "UserId": "nobody", "FaceIds": [F(1)]}, err(RNF, "nobody"), A)
case("DisassociateFaces", "missing_face_ids", {"CollectionId": "c", "UserId": "u"}, err(IPE, "FaceIds"), A)
SU = [cc(), CU("u1"), CU("u2"), CU("u3"), seed(users={2: "u1", 3: "u2", 4: "u3"})]
um = lambda u, st="ACTIVE": {"Similarity": "<number>", "User": {"UserId": u, "UserStatus": st}}
case("SearchUsers", "by_face", {"CollectionId": "c", "FaceId": F(1)},
     {"UserMatches": [um("u1"), um("u2")], "FaceModelVersion": "101.0", "SearchedFace": {"FaceId": F(1)}}, SU)
case("SearchUsers", "by_face_threshold", {"CollectionId": "c", "FaceId": F(1), "UserMatchThreshold": 0, "MaxUsers": 2},
     {"UserMatches": [um("u1"), um("u2")], "FaceModelVersion": "101.0", "SearchedFace": {"FaceId": F(1)}}, SU)
case("SearchUsers", "by_face_all", {"CollectionId": "c", "FaceId": F(1), "UserMatchThreshold": 0},
     {"UserMatches": [um("u1"), um("u2"), um("u3")], "FaceModelVersion": "101.0", "SearchedFace": {"FaceId": F(1)}}, SU)
case("SearchUsers", "by_user", {"CollectionId": "c", "UserId": "u1", "UserMatchThreshold": 70},
     {"UserMatches": [um("u2")], "FaceModelVersion": "101.0", "SearchedUser": {"UserId": "u1"}}, SU)
case("SearchUsers", "both", {"CollectionId": "c", "UserId": "u1", "FaceId": F(1)}, err(IPE, "exactly one of UserId and FaceId"), SU)
case("SearchUsers", "neither", {"CollectionId": "c"}, err(IPE, "exactly one of UserId and FaceId"), SU)
case("SearchUsers", "user_not_found", {"CollectionId": "c", "UserId": "nobody"}, err(RNF, "nobody"), SU)
case("SearchUsers", "face_not_found", {"CollectionId": "c", "FaceId": F(9)}, err(RNF, F(9)), SU)
case("DeleteUser", "token_replay", {"CollectionId": "c", "UserId": "u1", "ClientRequestToken": "del-1"}, {},
     [cc(), CU("u1"), call("DeleteUser", CollectionId="c", UserId="u1", ClientRequestToken="del-1")])
case("DeleteUser", "token_mismatch", {"CollectionId": "c", "UserId": "u2", "ClientRequestToken": "del-1"},
     err("IdempotentParameterMismatchException", "del-1"),
     [cc(), CU("u1"), CU("u2"), call("DeleteUser", CollectionId="c", UserId="u1", ClientRequestToken="del-1")])
# 101 faces close together (Euclidean <= 0.1 apart): the 101st face passes
# the match threshold but breaks the 100-faces-per-user quota
Q = [cc(), CU("u"), {"seed": "c", "faces": [{"FaceId": F(100 + i), "Embedding": [1, 0.001 * i]} for i in range(101)]},
     call("AssociateFaces", CollectionId="c", UserId="u", FaceIds=[F(100 + i) for i in range(100)])]
case("AssociateFaces", "quota", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(200)]},
     err("ServiceQuotaExceededException", "100"), Q)
case("AssociateFaces", "token_replay", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(1)], "ClientRequestToken": "as-1"},
     {"AssociatedFaces": [], "UnsuccessfulFaceAssociations": [], "UserStatus": "ACTIVE"},
     A + [call("AssociateFaces", CollectionId="c", UserId="u", FaceIds=[F(1)], ClientRequestToken="as-1")])
case("AssociateFaces", "token_mismatch", {"CollectionId": "c", "UserId": "u", "FaceIds": [F(3)], "ClientRequestToken": "as-1"},
     err("IdempotentParameterMismatchException", "as-1"),
     A + [call("AssociateFaces", CollectionId="c", UserId="u", FaceIds=[F(1)], ClientRequestToken="as-1")])
# ---- tags
case("TagResource", "ok", {"ResourceArn": ARN("c"), "Tags": {"team": "vision"}}, {}, [cc()])
case("TagResource", "bad_arn", {"ResourceArn": "arn:aws:s3:::my-bucket-name", "Tags": {"a": "b"}}, err(IPE, "collection ARN"), [cc()])
case("TagResource", "other_account", {"ResourceArn": "arn:aws:rekognition:us-east-1:999999999999:collection/c", "Tags": {"a": "b"}}, err(RNF), [cc()])
case("TagResource", "no_collection", {"ResourceArn": ARN("nope"), "Tags": {"a": "b"}}, err(RNF, "nope"), [cc()])
case("TagResource", "arn_too_short", {"ResourceArn": "arn:x", "Tags": {"a": "b"}}, err(IPE, "ResourceArn"), [cc()])
case("TagResource", "quota", {"ResourceArn": ARN("c"), "Tags": {"n%d" % i: "v" for i in range(2)}},
     err("ServiceQuotaExceededException", "200"), [cc(Tags={"k%d" % i: "v" for i in range(199)})])
case("TagResource", "value_wrong_type", {"ResourceArn": ARN("c"), "Tags": {"a": 1}}, err("SerializationException", "Tags.a"), [cc()])
case("UntagResource", "ok", {"ResourceArn": ARN("c"), "TagKeys": ["team", "absent"]}, {}, [cc(Tags={"team": "a"})])
case("UntagResource", "aws_key", {"ResourceArn": ARN("c"), "TagKeys": ["aws:x"]}, err(IPE, "TagKeys[0]"), [cc(Tags={"team": "a"})])
case("UntagResource", "no_collection", {"ResourceArn": ARN("nope"), "TagKeys": ["team"]}, err(RNF), [cc()])
case("ListTagsForResource", "ok", {"ResourceArn": ARN("c")}, {"Tags": {"cost:center": "42", "team": "vision"}},
     [cc(Tags={"team": "a", "cost:center": "42"}), call("TagResource", ResourceArn=ARN("c"), Tags={"team": "vision"})])
case("ListTagsForResource", "after_untag", {"ResourceArn": ARN("c")}, {"Tags": {"b": "2"}},
     [cc(Tags={"a": "1", "b": "2"}), call("UntagResource", ResourceArn=ARN("c"), TagKeys=["a"])])
case("ListTagsForResource", "empty", {"ResourceArn": ARN("c")}, {"Tags": {}}, [cc()])
case("ListTagsForResource", "no_collection", {"ResourceArn": ARN("c")}, err(RNF))

import shutil
if os.path.isdir(root): shutil.rmtree(root)
for (op, name), (req, resp, setup) in cases.items():
    d = os.path.join(root, op); os.makedirs(d, exist_ok=True)
    for suf, v in (("req", req), ("resp", resp), ("setup", setup)):
        if v is None: continue
        with open(os.path.join(d, "%s.%s.json" % (name, suf)), "w") as f:
            json.dump(v, f, indent=1 if suf != "req" or len(json.dumps(v)) < 2000 else None); f.write("\n")
print(len(cases), "cases")
