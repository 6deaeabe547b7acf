"""Creative review under the Advertising Law (广告法): the automatic check of ads created or edited
through the API and the admins' decisions (rules: matching.ad_review)."""
