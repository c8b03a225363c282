// The evaluation protocols of spec §4 on frozen embeddings: retrieval recall, k-NN, nearest class
// prototype (few-shot) and the linear probe. Pure functions of CPU tensors (napi/eval.cpp binds them).
#pragma once
#include <vector>

#include <torch/torch.h>

namespace rils {

// Where each true match ranks (0 = first) in cosine retrieval between images [ni, E] and texts
// [nt, E], text t belonging to image text_image[t] (int64 [nt]; an image may have several texts, as in
// COCO). image_to_text[i]: the texts of other images scoring above image i's best own text;
// text_to_image[t]: the other images scoring above text t's own. Images are scored a block of rows
// at a time, at most max_block_elements scores at once: never the whole ni × nt matrix.
struct RetrievalRanks {
  torch::Tensor image_to_text;  // int64 [ni]
  torch::Tensor text_to_image;  // int64 [nt]
};
RetrievalRanks retrieval_ranks(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                               const torch::Tensor& text_image, int64_t max_block_elements = int64_t{1} << 24);

// Per query row, the indices of the k keys with the highest dot product, best first, ties to the
// lower index (zero-shot top-k over class embeddings). queries [Q, E], keys [K, E] → int64 [Q, min(k, K)];
// scored a block of rows at a time, at most max_block_elements scores at once.
torch::Tensor top_k_by_dot(const torch::Tensor& queries, const torch::Tensor& keys, int64_t k,
                           int64_t max_block_elements = int64_t{1} << 24);

// k-nearest-neighbour labels by cosine similarity, majority vote weighted by similarity
// (ties → the smaller label). train [M, E], labels int64 [M], query [Q, E] → int64 [Q].
torch::Tensor knn_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                          int64_t k, int64_t num_classes);

// Nearest class prototype (mean of the L2-normalised examples of each class, re-normalised) by
// cosine: the few-shot protocol on frozen features. → int64 [Q].
torch::Tensor prototype_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                int64_t num_classes);

// The linear-probe protocol: multinomial logistic regression on standardised frozen features,
// full-batch L-BFGS with an L2 penalty `weight_decay` on the weights. → predicted labels [Q].
torch::Tensor linear_probe_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                   int64_t num_classes, double weight_decay, int64_t iterations);

}  // namespace rils
