"""The clerical review app (`regsosek serve review`): reviewers resolve `linkage.review.v1` tasks."""
