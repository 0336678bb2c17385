export * from './classes.js'
export { errorBody, errorJson, internalErrorBody, type OpenAIErrorBody } from './openai.js'
